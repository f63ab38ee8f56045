//! An echo server and its clients in one program, on 127.0.0.1.
//!
//! ```sh
//! cargo run --example echo
//! ```
//!
//! The server echoes each line it receives; three clients connect at once,
//! send a few lines, and check the answers. A timeout bounds the whole run,
//! and the server is shut down by cancelling `serve_forever`, as in asyncio.

use std::time::Duration;

use asyncio::{StreamReader, StreamWriter};

async fn handle(mut reader: StreamReader, writer: StreamWriter) -> std::io::Result<()> {
    let peer = writer.peer_addr().expect("a TCP connection");
    loop {
        let line = reader.readline().await?;
        if line.is_empty() {
            break; // the client closed its side
        }
        print!("server: {peer} sent {}", String::from_utf8_lossy(&line));
        writer.write(&line);
        writer.drain().await?;
    }
    writer.close();
    writer.wait_closed().await
}

async fn client(id: usize, port: u16) -> std::io::Result<()> {
    let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await?;
    for n in 0..3 {
        let line = format!("hello {n} from client {id}\n");
        writer.write(line.as_bytes());
        writer.drain().await?;
        let echo = reader.readline().await?;
        assert_eq!(echo, line.as_bytes());
        asyncio::sleep(Duration::from_millis(10)).await?;
    }
    writer.close();
    writer.wait_closed().await?;
    println!("client {id}: done");
    Ok(())
}

#[asyncio::main]
async fn main() {
    let server = asyncio::start_server(
        |r, w| async move {
            if let Err(e) = handle(r, w).await {
                if !asyncio::io::cancelled(&e) {
                    eprintln!("server: {e}");
                }
            }
        },
        "127.0.0.1",
        0,
    )
    .await
    .expect("bind 127.0.0.1");
    let port = server.local_addrs()[0].port();
    println!("serving on {:?}", server.local_addrs());
    let server = std::rc::Rc::new(server);
    let s = server.clone();
    let serving = asyncio::create_task(async move { s.serve_forever().await });

    let clients: Vec<_> = (0..3)
        .map(|id| asyncio::create_task(client(id, port)))
        .collect();
    let all = async {
        for c in clients {
            c.await??;
        }
        Ok::<_, std::io::Error>(())
    };
    match asyncio::wait_for(all, Duration::from_secs(10)).await {
        Ok(r) => r.expect("the clients succeed"),
        Err(asyncio::TimeoutError) => panic!("the echo run took more than 10 seconds"),
    }

    serving.cancel();
    let _ = serving.await;
    println!("server closed: {}", !server.is_serving());
}
