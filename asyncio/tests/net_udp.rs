//! UDP on the loop.

mod io_common;

use std::rc::Rc;

use asyncio::net::UdpSocket;
use io_common::{ms, run};

#[test]
fn send_to_and_recv_from() {
    let _g = io_common::shared();
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind(("127.0.0.1", 0)).await.unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(a.send_to(b"ping", ba).await.unwrap(), 4);
        let mut buf = [0u8; 64];
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], aa));
        b.send_to(b"pong", from).await.unwrap();
        let (n, from) = a.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"pong"[..], ba));
    });
}

#[test]
fn datagrams_keep_their_boundaries() {
    let _g = io_common::shared();
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        for msg in [&b"one"[..], b"two two", b""] {
            a.send_to(msg, to).await.unwrap();
        }
        let mut buf = [0u8; 64];
        for msg in [&b"one"[..], b"two two", b""] {
            let (n, _) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], msg);
        }
        // A datagram longer than the buffer is cut.
        a.send_to(b"0123456789", to).await.unwrap();
        let mut small = [0u8; 4];
        let (n, _) = b.recv_from(&mut small).await.unwrap();
        assert_eq!(&small[..n], b"0123");
    });
}

#[test]
fn connected_sockets_send_and_recv() {
    let _g = io_common::shared();
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(a.peer_addr().is_err());
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(format!("127.0.0.1:{}", a.local_addr().unwrap().port()))
            .await
            .unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        b.send(b"back").await.unwrap();
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
    });
}

#[test]
fn send_without_a_peer_is_an_error() {
    let _g = io_common::shared();
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let err = a.send(b"nowhere").await.unwrap_err();
        assert!(!asyncio::io::cancelled(&err));
        assert!(
            err.to_string()
                .contains(&a.local_addr().unwrap().to_string()),
            "{err}"
        );
    });
}

#[test]
fn a_cancelled_recv_loses_no_datagram() {
    let _g = io_common::shared();
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let b2 = b.clone();
        let mut receiver = asyncio::create_task(async move {
            let mut buf = [0u8; 16];
            b2.recv_from(&mut buf)
                .await
                .map(|_| ())
                .map_err(|e| asyncio::io::cancelled(&e))
        });
        asyncio::sleep(ms(10)).await.unwrap();
        // The datagram lands, and the cancel comes before the receiver runs.
        a.send_to(b"kept", b.local_addr().unwrap()).await.unwrap();
        receiver.cancel();
        assert_eq!((&mut receiver).await.unwrap(), Err(true));
        let mut buf = [0u8; 16];
        let (n, _) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"kept");
    });
}

#[test]
fn a_timed_out_recv_then_a_datagram() {
    let _g = io_common::shared();
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = [0u8; 16];
        assert!(asyncio::wait_for(b.recv_from(&mut buf), ms(20))
            .await
            .is_err());
        a.send_to(b"now", b.local_addr().unwrap()).await.unwrap();
        let (n, _) = asyncio::wait_for(b.recv_from(&mut buf), ms(5000))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"now");
    });
}
