//! Time: `sleep`, `timeout`, `wait_for`.

mod error;
mod sleep;
mod timeout;

pub use error::{InvalidStateError, TimeoutError};
pub use sleep::{sleep, sleep_until, Sleep};
pub(crate) use timeout::{mark_task_like, Inner as TimeoutInner};
pub use timeout::{timeout, timeout_at, wait_for, Timeout, TimeoutHandle};
