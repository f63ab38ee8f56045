//! The chat example's demo (`cargo run --example chat`), run as a test: the
//! same code, its transcript checked line by line.

mod io_common;

#[path = "../examples/chat.rs"]
#[allow(dead_code)]
mod chat;

#[test]
fn the_chat_demo_has_its_conversation() {
    let _g = io_common::shared();
    let transcript = io_common::run(chat::demo()).expect("the demo succeeds");
    let expected = [
        "alice  < name?",
        "alice  > alice",
        "alice  < welcome, alice! online: nobody else",
        "bob    < name?",
        "bob    > bob",
        "bob    < welcome, bob! online: alice",
        "alice  < * bob joined",
        "alice  > hi bob",
        "bob    < alice: hi bob",
        "bob    > hello alice",
        "alice  < bob: hello alice",
        "carol  < name?",
        "carol  > carol",
        "carol  < welcome, carol! online: alice, bob",
        "alice  < * carol joined",
        "bob    < * carol joined",
        "carol  > hi all",
        "alice  < carol: hi all",
        "bob    < carol: hi all",
        "bob    (leaves)",
        "alice  < * bob left",
        "carol  < * bob left",
        "alice  < * server shutting down",
        "alice  (disconnected)",
        "carol  < * server shutting down",
        "carol  (disconnected)",
    ];
    assert_eq!(transcript, expected);
}
