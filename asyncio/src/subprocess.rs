//! Subprocesses on the loop: [`create_subprocess_exec`],
//! [`create_subprocess_shell`], [`Process`] and its pipes (asyncio's
//! `asyncio.subprocess`). Unix only.
//!
//! The pipes are registered with the loop's reactor and wrapped in the
//! streams of a connection, as in asyncio: the child's stdin is a
//! [`StreamWriter`] (`write`, `drain`, `close`; dropping it closes the pipe
//! once the buffer is sent), its stdout and stderr are [`StreamReader`]s
//! (`read`, `readline`, `read_to_end`, …). Reading and draining are
//! checkpoints, like a socket's.
//!
//! # How the exit is noticed
//!
//! On Linux, [`Process::wait`] waits on a *pidfd* (`pidfd_open`, Linux
//! 5.3) registered with the reactor: it becomes readable when the child
//! exits, and the child is then reaped with `waitpid(pid, WNOHANG)` — no
//! SIGCHLD handler, no thread, nothing touches other children of the
//! process. Where `pidfd_open` is missing (other systems, older kernels),
//! `wait` polls the child every 10 ms instead.
//!
//! A child still running when its [`Process`] is dropped keeps running and
//! is not reaped (as with `std::process::Child`).

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use crate::io::reactor::{Dir, IoSource};
use crate::io::stream::IoStream;
use crate::io::wait::wait_io;
use crate::io::with_addr;
use crate::streams::{pipe_reader, pipe_writer};
use crate::{StreamReader, StreamWriter};

/// Starts `program` with `args`, its stdin, stdout and stderr piped to the
/// returned [`Process`] (`asyncio.create_subprocess_exec(program, *args,
/// stdin=PIPE, stdout=PIPE, stderr=PIPE)`). For other settings (inherited
/// streams, environment, working directory), build a
/// [`std::process::Command`] and use [`Process::spawn`].
///
/// ```
/// # asyncio::run(async {
/// let mut p = asyncio::create_subprocess_exec("echo", ["hello"]).await.unwrap();
/// let (out, _err) = p.communicate(None).await.unwrap();
/// assert_eq!(out, b"hello\n");
/// assert_eq!(p.returncode(), Some(0));
/// # });
/// ```
///
/// # Errors
/// The OS error, its message naming the command (`spawn \`nope\`: No such
/// file or directory (os error 2)`).
///
/// # Cancellation
/// Never suspends: the child is started when this is first polled.
pub async fn create_subprocess_exec<I, S>(
    program: impl AsRef<OsStr>,
    args: I,
) -> io::Result<Process>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    piped(&mut cmd);
    Process::spawn(&mut cmd)
}

/// Runs `cmd` with `sh -c`, its stdin, stdout and stderr piped to the
/// returned [`Process`] (`asyncio.create_subprocess_shell`).
///
/// ```
/// # asyncio::run(async {
/// let mut p = asyncio::create_subprocess_shell("echo oops >&2; exit 3").await.unwrap();
/// let (_out, err) = p.communicate(None).await.unwrap();
/// assert_eq!(err, b"oops\n");
/// assert_eq!(p.returncode(), Some(3));
/// # });
/// ```
///
/// # Errors
/// As [`create_subprocess_exec`].
///
/// # Cancellation
/// Never suspends.
pub async fn create_subprocess_shell(cmd: &str) -> io::Result<Process> {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(cmd);
    piped(&mut c);
    Process::spawn(&mut c)
}

fn piped(cmd: &mut Command) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
}

/// How a command reads in error messages: its program and arguments,
/// between backquotes.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    format!("`{s}`")
}

/// A child process started on the loop (asyncio's `Process`).
///
/// Its piped streams are the public fields [`stdin`](Process::stdin) (a
/// [`StreamWriter`]), [`stdout`](Process::stdout) and
/// [`stderr`](Process::stderr) ([`StreamReader`]s): `None` if not piped,
/// or once taken.
///
/// ```
/// # asyncio::run(async {
/// let mut p = asyncio::create_subprocess_exec("cat", [] as [&str; 0]).await.unwrap();
/// let stdin = p.stdin.take().unwrap();
/// stdin.write(b"round trip");
/// stdin.drain().await.unwrap();
/// stdin.close(); // cat reads end of file
/// let out = p.stdout.take().unwrap().read_to_end().await.unwrap();
/// assert_eq!(out, b"round trip");
/// assert_eq!(p.wait().await.unwrap(), 0);
/// # });
/// ```
pub struct Process {
    child: Child,
    exit: Option<IoSource<PidFd>>,
    status: Option<ExitStatus>,
    what: Rc<str>,
    /// The child's stdin, if piped (`proc.stdin`).
    pub stdin: Option<StreamWriter>,
    /// The child's stdout, if piped (`proc.stdout`).
    pub stdout: Option<StreamReader>,
    /// The child's stderr, if piped (`proc.stderr`).
    pub stderr: Option<StreamReader>,
}

impl Process {
    /// Starts `cmd` as configured (its `stdin`/`stdout`/`stderr` settings
    /// decide which pipes the [`Process`] has).
    ///
    /// ```
    /// use std::process::{Command, Stdio};
    /// # asyncio::run(async {
    /// let mut cmd = Command::new("pwd");
    /// cmd.current_dir("/").stdout(Stdio::piped());
    /// let mut p = asyncio::Process::spawn(&mut cmd).unwrap();
    /// assert!(p.stdin.is_none());
    /// assert_eq!(p.stdout.take().unwrap().read_to_end().await.unwrap(), b"/\n");
    /// assert_eq!(p.wait().await.unwrap(), 0);
    /// # });
    /// ```
    ///
    /// # Errors
    /// The OS error naming the command, or `NoRunningLoop` inside an
    /// `io::Error` outside a loop.
    pub fn spawn(cmd: &mut Command) -> io::Result<Process> {
        let what: Rc<str> = describe(cmd).into();
        let mut child = cmd.spawn().map_err(|e| with_addr(e, "spawn", &what))?;
        let mut take = || -> io::Result<_> {
            let stdin = child
                .stdin
                .take()
                .map(|s| pipe(s.into(), "stdin", &what).map(pipe_writer))
                .transpose()?;
            let stdout = child
                .stdout
                .take()
                .map(|s| pipe(s.into(), "stdout", &what).map(pipe_reader))
                .transpose()?;
            let stderr = child
                .stderr
                .take()
                .map(|s| pipe(s.into(), "stderr", &what).map(pipe_reader))
                .transpose()?;
            Ok((stdin, stdout, stderr, PidFd::open(child.id())?))
        };
        match take() {
            Ok((stdin, stdout, stderr, exit)) => Ok(Process {
                child,
                exit,
                status: None,
                what,
                stdin,
                stdout,
                stderr,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The child's process id.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let mut p = asyncio::create_subprocess_exec("true", [] as [&str; 0]).await.unwrap();
    /// assert!(p.pid() > 0);
    /// p.wait().await.unwrap();
    /// # });
    /// ```
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit code once the child has exited (checked without waiting),
    /// `None` while it runs. A child killed by a signal reads as minus the
    /// signal number, as in asyncio (`-9` after [`kill`](Process::kill)).
    ///
    /// ```
    /// # asyncio::run(async {
    /// let mut p = asyncio::create_subprocess_exec("sleep", ["10"]).await.unwrap();
    /// assert_eq!(p.returncode(), None);
    /// p.kill().unwrap();
    /// p.wait().await.unwrap();
    /// assert_eq!(p.returncode(), Some(-9));
    /// # });
    /// ```
    pub fn returncode(&mut self) -> Option<i32> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status.map(code)
    }

    /// Waits for the child to exit and returns its exit code (minus the
    /// signal number if a signal killed it). Does not close stdin: a child
    /// that reads it to the end (`cat`) waits for it to be closed (or
    /// dropped).
    ///
    /// ```
    /// # asyncio::run(async {
    /// let mut p = asyncio::create_subprocess_shell("exit 7").await.unwrap();
    /// assert_eq!(p.wait().await.unwrap(), 7);
    /// assert_eq!(p.wait().await.unwrap(), 7); // again: at once
    /// # });
    /// ```
    ///
    /// # Errors
    /// The OS error of `waitpid`, naming the command.
    ///
    /// # Cancellation
    /// Returns the cancellation; the child runs on and can be awaited
    /// again.
    pub async fn wait(&mut self) -> io::Result<i32> {
        if let Some(s) = self.status {
            return Ok(code(s));
        }
        let Process {
            child, exit, what, ..
        } = self;
        let status = match exit {
            Some(fd) => {
                wait_io(|cx| {
                    fd.poll_io(Dir::Read, cx, |_| match child.try_wait()? {
                        Some(s) => Ok(s),
                        None => Err(io::ErrorKind::WouldBlock.into()),
                    })
                })
                .await
            }
            None => loop {
                match child.try_wait() {
                    Ok(Some(s)) => break Ok(s),
                    Ok(None) => crate::sleep(Duration::from_millis(10)).await?,
                    Err(e) => break Err(e),
                }
            },
        }
        .map_err(|e| with_addr(e, "wait for", &*what))?;
        self.status = Some(status);
        Ok(code(status))
    }

    /// Writes `input` (if any) to stdin and closes it, reads stdout and
    /// stderr to their end, and waits for the child to exit, all at once
    /// (`proc.communicate(input)`). Returns what the child wrote to stdout
    /// and stderr (empty for a stream that is not piped). The pipes are
    /// taken: afterwards `stdin`, `stdout` and `stderr` are `None`.
    ///
    /// ```
    /// # asyncio::run(async {
    /// let mut p = asyncio::create_subprocess_exec("tr", ["a-z", "A-Z"]).await.unwrap();
    /// let (out, err) = p.communicate(Some(b"shout")).await.unwrap();
    /// assert_eq!((out.as_slice(), err.as_slice()), (&b"SHOUT"[..], &b""[..]));
    /// assert_eq!(p.returncode(), Some(0));
    /// # });
    /// ```
    ///
    /// # Errors
    /// An error reading or writing a pipe, or waiting, naming the command.
    /// A child that exits without reading all of `input` is not an error
    /// (the broken pipe is ignored, as in asyncio).
    ///
    /// # Cancellation
    /// Returns the cancellation; stdout and stderr are closed and what was
    /// read is lost, stdin is closed once the loop has sent it `input`. The
    /// child runs on: [`wait`](Process::wait) for it, or kill it.
    pub async fn communicate(&mut self, input: Option<&[u8]>) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let stdin = self.stdin.take();
        let mut stdout = self.stdout.take();
        let mut stderr = self.stderr.take();
        if let Some(w) = &stdin {
            w.write(input.unwrap_or(&[]));
            w.close();
        }
        let mut stdin_done = stdin.is_none();
        wait_io(|cx| {
            if let Some(w) = stdin.as_ref().filter(|_| !stdin_done) {
                match w.poll_closed(cx) {
                    Poll::Ready(Ok(())) => stdin_done = true,
                    // The child did not read it all: not an error.
                    Poll::Ready(Err(e))
                        if matches!(
                            e.kind(),
                            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        stdin_done = true
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            let mut done = stdin_done;
            for r in [&mut stdout, &mut stderr].into_iter().flatten() {
                match r.poll_fill_to_eof(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => done = false,
                }
            }
            if done {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
        .await?;
        let out = stdout
            .as_mut()
            .map(StreamReader::take_all)
            .unwrap_or_default();
        let err = stderr
            .as_mut()
            .map(StreamReader::take_all)
            .unwrap_or_default();
        drop((stdin, stdout, stderr));
        self.wait().await?;
        Ok((out, err))
    }

    /// Sends signal `signum` to the child (`proc.send_signal`). Does
    /// nothing once the child has been reaped (its pid may be reused).
    ///
    /// ```
    /// # asyncio::run(async {
    /// let mut p = asyncio::create_subprocess_exec("sleep", ["10"]).await.unwrap();
    /// p.send_signal(libc::SIGUSR1).unwrap();
    /// assert_eq!(p.wait().await.unwrap(), -libc::SIGUSR1);
    /// # });
    /// ```
    ///
    /// # Errors
    /// The OS error of `kill`, naming the command.
    pub fn send_signal(&mut self, signum: i32) -> io::Result<()> {
        if self.returncode().is_some() {
            return Ok(());
        }
        // The child is not reaped yet (checked above, and only this
        // `Process` reaps it), so its pid is still its own.
        crate::sys::kill(self.child.id(), signum)
            .map_err(|e| with_addr(e, "send a signal to", &*self.what))
    }

    /// Sends SIGTERM to the child (`proc.terminate()`).
    ///
    /// ```
    /// # asyncio::run(async {
    /// let mut p = asyncio::create_subprocess_exec("sleep", ["10"]).await.unwrap();
    /// p.terminate().unwrap();
    /// assert_eq!(p.wait().await.unwrap(), -libc::SIGTERM);
    /// # });
    /// ```
    ///
    /// # Errors
    /// As [`send_signal`](Process::send_signal).
    pub fn terminate(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Sends SIGKILL to the child (`proc.kill()`).
    ///
    /// ```
    /// # asyncio::run(async {
    /// let mut p = asyncio::create_subprocess_exec("sleep", ["10"]).await.unwrap();
    /// p.kill().unwrap();
    /// assert_eq!(p.wait().await.unwrap(), -libc::SIGKILL);
    /// # });
    /// ```
    ///
    /// # Errors
    /// As [`send_signal`](Process::send_signal).
    pub fn kill(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("command", &self.what)
            .field("pid", &self.child.id())
            .field("status", &self.status)
            .finish()
    }
}

/// asyncio's `returncode`: the exit code, or minus the signal number.
fn code(s: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().or_else(|| s.signal().map(|n| -n)).unwrap_or(-1)
}

/// A pidfd registered with the reactor (see the module doc).
struct PidFd(std::os::fd::OwnedFd);

impl PidFd {
    /// Opens and registers a pidfd for `pid`; `None` where the system has
    /// none.
    #[cfg(target_os = "linux")]
    fn open(pid: u32) -> io::Result<Option<IoSource<PidFd>>> {
        match crate::sys::pidfd_open(pid) {
            Some(fd) => IoSource::new(PidFd(fd)).map(Some),
            None => Ok(None),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn open(_pid: u32) -> io::Result<Option<IoSource<PidFd>>> {
        Ok(None)
    }
}

impl mio::event::Source for PidFd {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        mio::unix::SourceFd(&self.0.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        mio::unix::SourceFd(&self.0.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        mio::unix::SourceFd(&self.0.as_raw_fd()).deregister(registry)
    }
}

/// Registers one of the child's pipes, named in error messages as "the
/// stdout of `cmd`".
fn pipe<P>(p: P, name: &str, cmd: &str) -> io::Result<IoStream<P, String>>
where
    P: mio::event::Source + NonBlocking,
{
    p.set_nonblocking(true)?;
    IoStream::new(p, format!("the {name} of {cmd}"))
}

/// The two ends of a pipe, made non-blocking.
trait NonBlocking {
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

impl NonBlocking for mio::unix::pipe::Sender {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        mio::unix::pipe::Sender::set_nonblocking(self, on)
    }
}

impl NonBlocking for mio::unix::pipe::Receiver {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        mio::unix::pipe::Receiver::set_nonblocking(self, on)
    }
}
