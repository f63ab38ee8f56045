//! Addresses: what `connect` and `bind` accept, and name resolution off the
//! loop's thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::io::with_addr;

/// What [`TcpStream::connect`](super::TcpStream::connect),
/// [`TcpListener::bind`](super::TcpListener::bind) and the UDP calls
/// accept as an address: a [`SocketAddr`], an `(ip, port)` pair, a
/// `"host:port"` string or a `(host, port)` pair. A host name is resolved on
/// one of the loop's worker threads ([`to_thread`](crate::to_thread)), so
/// the lookup never blocks the loop; an IP address is used as is.
///
/// The trait is sealed: its method is private to the crate.
///
/// ```
/// asyncio::run(async {
///     use asyncio::net::TcpListener;
///     let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let b = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
///     let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
///     let c = TcpListener::bind(addr).await.unwrap();
///     # let _ = (a, b, c);
/// });
/// ```
pub trait ToSocketAddrs: sealed::Sealed {}

mod sealed {
    use std::net::SocketAddr;

    /// An address, or a name to resolve.
    pub enum Target {
        Addrs(Vec<SocketAddr>),
        /// `host:port` in one string.
        Name(String),
        Host(String, u16),
    }

    pub trait Sealed {
        fn target(&self) -> Target;
    }
}

use sealed::{Sealed, Target};

macro_rules! addr_impl {
    ($($t:ty => |$s:ident| $e:expr;)*) => {$(
        impl Sealed for $t {
            fn target(&self) -> Target {
                let $s = self;
                $e
            }
        }
        impl ToSocketAddrs for $t {}
    )*};
}

addr_impl! {
    SocketAddr => |s| Target::Addrs(vec![*s]);
    SocketAddrV4 => |s| Target::Addrs(vec![SocketAddr::V4(*s)]);
    SocketAddrV6 => |s| Target::Addrs(vec![SocketAddr::V6(*s)]);
    (IpAddr, u16) => |s| Target::Addrs(vec![SocketAddr::from(*s)]);
    (Ipv4Addr, u16) => |s| Target::Addrs(vec![SocketAddr::from(*s)]);
    (Ipv6Addr, u16) => |s| Target::Addrs(vec![SocketAddr::from(*s)]);
    [SocketAddr] => |s| Target::Addrs(s.to_vec());
    Vec<SocketAddr> => |s| Target::Addrs(s.clone());
    str => |s| match s.parse::<SocketAddr>() {
        Ok(a) => Target::Addrs(vec![a]),
        Err(_) => Target::Name(s.to_string()),
    };
    String => |s| s.as_str().target();
    (&str, u16) => |s| host_port(s.0, s.1);
    (String, u16) => |s| host_port(&s.0, s.1);
}

impl<T: Sealed + ?Sized> Sealed for &T {
    fn target(&self) -> Target {
        (**self).target()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}

fn host_port(host: &str, port: u16) -> Target {
    match host.parse::<IpAddr>() {
        Ok(ip) => Target::Addrs(vec![SocketAddr::new(ip, port)]),
        Err(_) => Target::Host(host.to_string(), port),
    }
}

/// Resolves `addr`, on a worker thread if it names a host.
///
/// # Cancellation
/// Returns the cancellation at once; a lookup already running finishes on
/// its thread and is dropped.
pub(crate) async fn resolve(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    let (name, lookup) = match addr.target() {
        Target::Addrs(v) => return nonempty(v, "resolve", "an empty address list"),
        Target::Name(s) => (s.clone(), crate::to_thread(move || lookup(&s))),
        Target::Host(h, p) => (
            format!("{h}:{p}"),
            crate::to_thread(move || lookup(&(h.as_str(), p))),
        ),
    };
    let addrs = lookup.await?.map_err(|e| with_addr(e, "resolve", &name))?;
    nonempty(addrs, "resolve", &name)
}

fn lookup(a: &(impl std::net::ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    Ok(a.to_socket_addrs()?.collect())
}

fn nonempty(v: Vec<SocketAddr>, op: &str, name: &str) -> io::Result<Vec<SocketAddr>> {
    if v.is_empty() {
        Err(with_addr(
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to use"),
            op,
            name,
        ))
    } else {
        Ok(v)
    }
}

/// Tries `f` on each address in turn; the first success wins, else the
/// last error is returned.
pub(crate) async fn each_addr<T, F, Fut>(addrs: Vec<SocketAddr>, mut f: F) -> io::Result<T>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let mut last = None;
    for a in addrs {
        match f(a).await {
            Ok(v) => return Ok(v),
            Err(e) if crate::io::cancelled(&e) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one address"))
}
