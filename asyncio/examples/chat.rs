//! A chat server: every line a client sends goes to all the others, with
//! the sender's name; arrivals and departures are announced.
//!
//! ```sh
//! cargo run --example chat                            # the demo: a server and three scripted clients
//! cargo run --example chat -- --serve 127.0.0.1:7000  # serve until Ctrl-C; chat with `nc 127.0.0.1 7000`
//! ```
//!
//! The demo prints the conversation as each client sees it (`<` received,
//! `>` sent) and exits; `tests/chat_example.rs` runs the same demo and
//! checks the transcript. With `--serve`, Ctrl-C cancels the main task (as
//! `asyncio.run` does): the server handles the cancellation — it says
//! goodbye to every client, closes their connections, waits for them to
//! close — and the program exits normally.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{Server, StreamReader, StreamWriter};

/// A client that falls this far behind (bytes sent to it but not yet taken
/// by its connection) is disconnected rather than buffered for without end.
const MAX_BACKLOG: usize = 1 << 20;

/// The clients connected and named, in the order they joined.
#[derive(Default)]
pub struct Room {
    members: RefCell<Vec<Member>>,
    next_id: Cell<u64>,
}

struct Member {
    id: u64,
    name: String,
    writer: Rc<StreamWriter>,
}

impl Room {
    fn join(&self, name: &str, writer: Rc<StreamWriter>) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.members.borrow_mut().push(Member {
            id,
            name: name.to_string(),
            writer,
        });
        id
    }

    fn leave(&self, id: u64) {
        self.members.borrow_mut().retain(|m| m.id != id);
    }

    fn names(&self) -> Vec<String> {
        self.members
            .borrow()
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }

    /// Sends `line` to every member but `except`. Never waits: a member's
    /// writer buffers, and one too far behind is cut off.
    fn broadcast(&self, except: Option<u64>, line: &str) {
        for m in self.members.borrow().iter() {
            if Some(m.id) == except {
                continue;
            }
            m.writer.write(line.as_bytes());
            if m.writer.buffer_size() > MAX_BACKLOG {
                m.writer.abort(); // its reader sees end of file: it leaves
            }
        }
    }
}

/// One client's session: ask its name, announce it, relay its lines, and
/// announce its departure however the connection ends.
async fn session(room: Rc<Room>, mut reader: StreamReader, writer: StreamWriter) {
    let writer = Rc::new(writer);
    writer.write(b"name?\n");
    let name = match reader.readline().await {
        Ok(line) if !line.is_empty() => String::from_utf8_lossy(&line).trim().to_string(),
        _ => return, // gone before saying who it is
    };
    let others = room.names();
    let others = if others.is_empty() {
        "nobody else".to_string()
    } else {
        others.join(", ")
    };
    writer.write(format!("welcome, {name}! online: {others}\n").as_bytes());
    room.broadcast(None, &format!("* {name} joined\n"));
    let id = room.join(&name, writer.clone());
    loop {
        match reader.readline().await {
            Ok(line) if !line.is_empty() => {
                let text = String::from_utf8_lossy(&line);
                room.broadcast(Some(id), &format!("{name}: {}\n", text.trim_end()));
            }
            // End of file, an error, or the loop closing (a cancellation,
            // handled here: the task ends normally).
            _ => break,
        }
    }
    room.leave(id);
    room.broadcast(None, &format!("* {name} left\n"));
    writer.close();
}

/// Starts the chat server on `host:port` (port 0: any free port).
pub async fn start(host: &str, port: u16) -> io::Result<(Server, Rc<Room>)> {
    let room = Rc::new(Room::default());
    let r = room.clone();
    let server = asyncio::start_server(
        move |reader, writer| session(r.clone(), reader, writer),
        host,
        port,
    )
    .await?;
    Ok((server, room))
}

/// Closes the server: no new clients, a goodbye to each one, their
/// connections closed once the goodbye is sent, and all of them waited for.
pub async fn shut_down(server: &Server, room: &Room) {
    server.close();
    room.broadcast(None, "* server shutting down\n");
    server.close_clients();
    let _ = server.wait_closed().await;
}

/// A scripted client of the demo.
struct Bot {
    name: &'static str,
    reader: StreamReader,
    writer: StreamWriter,
    transcript: Rc<RefCell<Vec<String>>>,
}

impl Bot {
    async fn connect(
        name: &'static str,
        port: u16,
        transcript: &Rc<RefCell<Vec<String>>>,
    ) -> io::Result<Bot> {
        let (reader, writer) = asyncio::open_connection("127.0.0.1", port).await?;
        Ok(Bot {
            name,
            reader,
            writer,
            transcript: transcript.clone(),
        })
    }

    fn log(&self, line: String) {
        println!("{line}");
        self.transcript.borrow_mut().push(line);
    }

    fn say(&self, text: &str) {
        self.writer.write(format!("{text}\n").as_bytes());
        self.log(format!("{:<6} > {text}", self.name));
    }

    /// Reads the next line, which must be `want`.
    async fn hear(&mut self, want: &str) -> io::Result<()> {
        let line = self.reader.readline().await?;
        let got = String::from_utf8_lossy(&line).trim_end().to_string();
        self.log(format!("{:<6} < {got}", self.name));
        if got != want {
            return Err(io::Error::other(format!(
                "{} expected {want:?}, got {got:?}",
                self.name
            )));
        }
        Ok(())
    }

    /// Connects, and answers the server's question with its name.
    async fn join(
        name: &'static str,
        port: u16,
        transcript: &Rc<RefCell<Vec<String>>>,
        welcome: &str,
    ) -> io::Result<Bot> {
        let mut bot = Bot::connect(name, port, transcript).await?;
        bot.hear("name?").await?;
        bot.say(name);
        bot.hear(welcome).await?;
        Ok(bot)
    }

    /// Reads end of file: the server closed the connection.
    async fn hear_the_end(&mut self) -> io::Result<()> {
        let rest = self.reader.read_to_end().await?;
        if !rest.is_empty() {
            return Err(io::Error::other(format!(
                "{} got more: {rest:?}",
                self.name
            )));
        }
        self.log(format!("{:<6} (disconnected)", self.name));
        Ok(())
    }
}

/// The demo: a server and three scripted clients. Each step waits for the
/// lines it causes, so the transcript is the same on every run; it is
/// printed as it goes, and returned.
pub async fn demo() -> io::Result<Vec<String>> {
    let (server, room) = start("127.0.0.1", 0).await?;
    let port = server.local_addrs()[0].port();
    println!("chat server on 127.0.0.1:{port}");
    let t = Rc::new(RefCell::new(Vec::new()));

    let mut alice = Bot::join("alice", port, &t, "welcome, alice! online: nobody else").await?;
    let mut bob = Bot::join("bob", port, &t, "welcome, bob! online: alice").await?;
    alice.hear("* bob joined").await?;

    alice.say("hi bob");
    bob.hear("alice: hi bob").await?;
    bob.say("hello alice");
    alice.hear("bob: hello alice").await?;

    let mut carol = Bot::join("carol", port, &t, "welcome, carol! online: alice, bob").await?;
    alice.hear("* carol joined").await?;
    bob.hear("* carol joined").await?;
    carol.say("hi all");
    alice.hear("carol: hi all").await?;
    bob.hear("carol: hi all").await?;

    bob.log(format!("{:<6} (leaves)", bob.name));
    bob.writer.close();
    alice.hear("* bob left").await?;
    carol.hear("* bob left").await?;

    shut_down(&server, &room).await;
    for bot in [&mut alice, &mut carol] {
        bot.hear("* server shutting down").await?;
        bot.hear_the_end().await?;
    }
    let transcript = t.borrow().clone();
    Ok(transcript)
}

/// Serves on `addr` until Ctrl-C.
async fn serve(addr: &str) -> io::Result<()> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse().ok()?)))
        .ok_or_else(|| io::Error::other(format!("not HOST:PORT: {addr}")))?;
    let (server, room) = start(host, port).await?;
    println!("chat server on {:?}; Ctrl-C stops it", server.local_addrs());
    // Nothing to do but wait for Ctrl-C, which cancels this task. The
    // cancellation is handled here (dropped): the cleanup's awaits run
    // normally, and the program ends normally.
    let forever = asyncio::Event::new();
    let _cancelled = forever.wait().await.expect_err("nobody sets it");
    println!("shutting down");
    shut_down(&server, &room).await;
    println!("server closed");
    Ok(())
}

#[asyncio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("--demo") => match asyncio::wait_for(demo(), Duration::from_secs(10)).await {
            Ok(Ok(_)) => println!("demo done"),
            Ok(Err(e)) => panic!("the demo failed: {e}"),
            Err(asyncio::TimeoutError) => panic!("the demo took more than 10 seconds"),
        },
        Some("--serve") => {
            let addr = args.get(1).map_or("127.0.0.1:7000", String::as_str);
            if let Err(e) = serve(addr).await {
                eprintln!("chat: {e}");
                std::process::exit(1);
            }
        }
        Some(other) => {
            eprintln!("usage: chat [--demo | --serve HOST:PORT] (got {other})");
            std::process::exit(2);
        }
    }
}
