//! Programs of the `asyncio-difftest/1` language (`ref/FORMAT.md`): the syntax tree and a
//! parser that accepts exactly what `ref/ref.py` accepts.
//!
//! The parser works on a [`serde_json::Value`] rather than through derived `Deserialize`
//! impls so that it can mirror `ref.py`'s `validate()` rule for rule (unknown fields, name
//! syntax, integer-only values, bodies that must exist) and name the offending statement
//! by its path, as `ref.py` does.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// A task variable, body name or error kind: `[A-Za-z_][A-Za-z0-9_]{0,31}`.
pub type Name = Arc<str>;

/// A block: a list of statements run in order in the same task.
pub type Block = Arc<[Stmt]>;

/// A time argument in units (1 unit = 10 ms of virtual time); `None` is "no timeout".
pub type Time = Option<u32>;

/// One statement. Field meanings are those of `FORMAT.md`'s statement table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// `log S`.
    Log {
        /// The message.
        msg: String,
    },
    /// `await asyncio.sleep(t)`; `t == 0` is a bare yield.
    Sleep {
        /// Units to sleep.
        t: u32,
    },
    /// `T = create_task(run_body(B, label=T), name=T)`.
    Spawn {
        /// The variable bound to the new task (also its label and name).
        task: Name,
        /// The body it runs.
        body: Name,
    },
    /// `await T`.
    Await {
        /// The awaited task variable.
        task: Name,
        /// Re-raise non-cancellation exceptions.
        propagate: bool,
    },
    /// `T.cancel()` / `T.cancel(msg)`.
    Cancel {
        /// The cancelled task variable.
        task: Name,
        /// The cancel message (never observed by the trace).
        msg: Option<String>,
    },
    /// `T.done()`, `T.cancelled()`, `T.cancelling()`.
    State {
        /// The inspected task variable.
        task: Name,
    },
    /// `await asyncio.wait_for(T, t)`.
    WaitFor {
        /// The awaited task variable.
        task: Name,
        /// The timeout.
        t: Time,
        /// Re-raise non-cancellation exceptions.
        propagate: bool,
    },
    /// `await asyncio.wait_for(run_body(B, label=L>B), t)`.
    WaitForBody {
        /// The body run under the timeout.
        body: Name,
        /// The timeout.
        t: Time,
        /// Re-raise non-cancellation exceptions.
        propagate: bool,
    },
    /// `await asyncio.wait_for(asyncio.shield(T), t)`.
    ShieldWaitFor {
        /// The shielded task variable.
        task: Name,
        /// The timeout.
        t: Time,
        /// Re-raise non-cancellation exceptions.
        propagate: bool,
    },
    /// `async with asyncio.timeout(t) as cm: block`.
    Timeout {
        /// The delay.
        t: Time,
        /// The block run under the timeout.
        block: Block,
        /// Re-raise non-cancellation exceptions.
        propagate: bool,
    },
    /// `try: block` / `except CancelledError: on_cancel; raise if reraise`.
    Try {
        /// The protected block.
        block: Block,
        /// The handler block (empty when absent).
        on_cancel: Block,
        /// Re-raise the cancellation after the handler (default true).
        reraise: bool,
    },
    /// `asyncio.current_task().uncancel()`.
    Uncancel,
    /// `asyncio.current_task().cancelling()`.
    Cancelling,
    /// `await asyncio.gather(*tasks, return_exceptions=...)`.
    Gather {
        /// The gathered task variables, in order.
        tasks: Vec<Name>,
        /// Collect exceptions as items.
        return_exceptions: bool,
        /// Re-raise non-cancellation exceptions.
        propagate: bool,
    },
    /// `async with TaskGroup() as tg:` children, then `block`.
    TaskGroup {
        /// `(variable, body)` of each child, created in order.
        children: Vec<(Name, Name)>,
        /// The group's body (empty when absent).
        block: Block,
        /// Re-raise non-cancellation exceptions.
        propagate: bool,
    },
    /// `raise ProgramError(kind)`.
    Raise {
        /// The error kind.
        kind: Name,
    },
    /// End the body with a value (`None` is `null`).
    Return {
        /// The returned value.
        value: Option<i64>,
    },
    /// An operation on a synchronisation object declared under `"sync"`.
    Obj {
        /// The operation.
        op: ObjOp,
        /// The object's name.
        obj: Name,
    },
    /// `await X.acquire()`, then `try: block` / `finally: X.release()`.
    With {
        /// The lock, semaphore or condition.
        obj: Name,
        /// The block run while holding it.
        block: Block,
    },
}

/// The operations on synchronisation objects (`FORMAT.md`, "Synchronisation objects").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjOp {
    /// `await X.acquire()` (lock, semaphore, condition).
    Acquire,
    /// `X.release()` (lock, semaphore, condition).
    Release,
    /// `X.locked()` (lock, semaphore, condition).
    Locked,
    /// `E.set()`.
    Set,
    /// `E.clear()`.
    Clear,
    /// `E.is_set()`.
    IsSet,
    /// `await X.wait()` (event, condition, barrier).
    Wait,
    /// `C.notify(n)`.
    Notify(usize),
    /// `C.notify_all()`.
    NotifyAll,
    /// `await B.reset()`.
    Reset,
    /// `await B.abort()`.
    Abort,
    /// `B.n_waiting`, `B.broken`.
    BarrierState,
    /// `await Q.put(v)`.
    Put(i64),
    /// `Q.put_nowait(v)`.
    PutNowait(i64),
    /// `await Q.get()`.
    Get,
    /// `Q.get_nowait()`.
    GetNowait,
    /// `Q.task_done()`.
    TaskDone,
    /// `await Q.join()`.
    Join,
    /// `Q.qsize()`.
    Qsize,
    /// `Q.shutdown(immediate)`.
    Qshutdown {
        /// Discard the items left and fail every get at once.
        immediate: bool,
    },
}

impl ObjOp {
    /// The op as written in the program.
    pub fn name(&self) -> &'static str {
        match self {
            ObjOp::Acquire => "acquire",
            ObjOp::Release => "release",
            ObjOp::Locked => "locked",
            ObjOp::Set => "set",
            ObjOp::Clear => "clear",
            ObjOp::IsSet => "is_set",
            ObjOp::Wait => "wait",
            ObjOp::Notify(_) => "notify",
            ObjOp::NotifyAll => "notify_all",
            ObjOp::Reset => "reset",
            ObjOp::Abort => "abort",
            ObjOp::BarrierState => "barrier_state",
            ObjOp::Put(_) => "put",
            ObjOp::PutNowait(_) => "put_nowait",
            ObjOp::Get => "get",
            ObjOp::GetNowait => "get_nowait",
            ObjOp::TaskDone => "task_done",
            ObjOp::Join => "join",
            ObjOp::Qsize => "qsize",
            ObjOp::Qshutdown { .. } => "qshutdown",
        }
    }
}

/// A synchronisation object declared under the program's `"sync"` key, with its
/// parameters (`ref.py`'s `SYNC_TYPES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjType {
    /// `asyncio.Lock()`.
    Lock,
    /// `asyncio.Event()`.
    Event,
    /// `asyncio.Condition()` (with a lock of its own).
    Condition,
    /// `asyncio.Semaphore(value)` (default 1).
    Semaphore(usize),
    /// `asyncio.BoundedSemaphore(value)` (default 1).
    BoundedSemaphore(usize),
    /// `asyncio.Barrier(parties)`.
    Barrier(usize),
    /// `asyncio.Queue(maxsize)` (default 0: unbounded).
    Queue(usize),
    /// `asyncio.LifoQueue(maxsize)`.
    LifoQueue(usize),
    /// `asyncio.PriorityQueue(maxsize)`.
    PriorityQueue(usize),
}

impl ObjType {
    /// The `"type"` as written in the program.
    pub fn name(&self) -> &'static str {
        match self {
            ObjType::Lock => "lock",
            ObjType::Event => "event",
            ObjType::Condition => "condition",
            ObjType::Semaphore(_) => "semaphore",
            ObjType::BoundedSemaphore(_) => "bounded_semaphore",
            ObjType::Barrier(_) => "barrier",
            ObjType::Queue(_) => "queue",
            ObjType::LifoQueue(_) => "lifo_queue",
            ObjType::PriorityQueue(_) => "priority_queue",
        }
    }
}

impl Stmt {
    /// The statement's `op` as written in the program.
    pub fn op(&self) -> &'static str {
        match self {
            Stmt::Log { .. } => "log",
            Stmt::Sleep { .. } => "sleep",
            Stmt::Spawn { .. } => "spawn",
            Stmt::Await { .. } => "await",
            Stmt::Cancel { .. } => "cancel",
            Stmt::State { .. } => "state",
            Stmt::WaitFor { .. } => "wait_for",
            Stmt::WaitForBody { .. } => "wait_for_body",
            Stmt::ShieldWaitFor { .. } => "shield_wait_for",
            Stmt::Timeout { .. } => "timeout",
            Stmt::Try { .. } => "try",
            Stmt::Uncancel => "uncancel",
            Stmt::Cancelling => "cancelling",
            Stmt::Gather { .. } => "gather",
            Stmt::TaskGroup { .. } => "taskgroup",
            Stmt::Raise { .. } => "raise",
            Stmt::Return { .. } => "return",
            Stmt::Obj { op, .. } => op.name(),
            Stmt::With { .. } => "with",
        }
    }

    /// The nested blocks of this statement (`block`, then `on_cancel`).
    pub fn blocks(&self) -> Vec<&Block> {
        match self {
            Stmt::Timeout { block, .. }
            | Stmt::TaskGroup { block, .. }
            | Stmt::With { block, .. } => vec![block],
            Stmt::Try {
                block, on_cancel, ..
            } => vec![block, on_cancel],
            _ => Vec::new(),
        }
    }
}

/// A whole program: named bodies; `main` runs as the main task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The program's `name`, if it has one (informational).
    pub name: Option<String>,
    /// Every body by name.
    pub bodies: BTreeMap<Name, Block>,
    /// The synchronisation objects declared under `"sync"`, by name.
    pub objects: BTreeMap<Name, ObjType>,
}

impl Program {
    /// Parses and validates a program from JSON text.
    pub fn parse(text: &str) -> Result<Program, ParseError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| ParseError(format!("bad JSON: {e}")))?;
        Program::from_value(&v)
    }

    /// Validates and converts an already parsed JSON value (the rules of `ref.py`'s `validate`).
    pub fn from_value(v: &Value) -> Result<Program, ParseError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ParseError("program must be a JSON object".into()))?;
        let bodies = match obj.get("bodies") {
            Some(Value::Object(b)) if b.contains_key("main") => b,
            _ => {
                return Err(ParseError(
                    "program needs a \"bodies\" object with a \"main\" body".into(),
                ))
            }
        };
        let objects = parse_sync(obj.get("sync"))?;
        let cx = Cx {
            bodies,
            objects: &objects,
        };
        let mut out = BTreeMap::new();
        for (bname, stmts) in bodies {
            if !is_name(bname) {
                return Err(ParseError(format!("bad body name {bname:?}")));
            }
            let block = parse_block(stmts, &cx, &format!("body {bname}"))?;
            out.insert(Name::from(bname.as_str()), block);
        }
        let name = obj.get("name").and_then(Value::as_str).map(str::to_owned);
        Ok(Program {
            name,
            bodies: out,
            objects,
        })
    }

    /// The `main` body.
    pub fn main(&self) -> &Block {
        &self.bodies["main"]
    }

    /// Every statement of every body, nested ones included, in body-name order.
    pub fn statements(&self) -> Vec<&Stmt> {
        fn walk<'a>(block: &'a [Stmt], out: &mut Vec<&'a Stmt>) {
            for st in block {
                out.push(st);
                for b in st.blocks() {
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        for b in self.bodies.values() {
            walk(b, &mut out);
        }
        out
    }

    /// The distinct ops the program uses, sorted.
    pub fn ops(&self) -> Vec<&'static str> {
        let mut ops: Vec<_> = self.statements().iter().map(|s| s.op()).collect();
        ops.sort_unstable();
        ops.dedup();
        ops
    }
}

/// Why a program was rejected; the text names the statement by path, like `ref.py`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid program: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

/// `[A-Za-z_][A-Za-z0-9_]{0,31}`.
pub fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Printable ASCII without `"` and `\`, at most 60 characters.
pub fn is_msg(s: &str) -> bool {
    s.len() <= 60
        && s.bytes()
            .all(|c| (b' '..=b'~').contains(&c) && c != b'"' && c != b'\\')
}

/// Largest time argument `ref.py` accepts.
const MAX_TIME: u64 = 1_000_000;
/// Values must satisfy `|v| < 2^53`.
const VALUE_LIMIT: i64 = 1 << 53;
/// Largest semaphore value, queue size, notify count or barrier size (`ref.py`'s `MAX_COUNT`).
const MAX_COUNT: u64 = 1000;

/// The object types a statement's `obj` field accepts (`ref.py`'s `OBJ_KINDS`).
const LOCKISH: &[&str] = &["lock", "semaphore", "bounded_semaphore", "condition"];
const EVENT: &[&str] = &["event"];
const WAITABLE: &[&str] = &["event", "condition", "barrier"];
const CONDITION: &[&str] = &["condition"];
const BARRIER: &[&str] = &["barrier"];
const QUEUE: &[&str] = &["queue", "lifo_queue", "priority_queue"];

/// What the statements of a program may refer to.
struct Cx<'a> {
    bodies: &'a Map<String, Value>,
    objects: &'a BTreeMap<Name, ObjType>,
}

/// The `"sync"` declarations: `{NAME: {"type": TYPE, ...}}` (`ref.py`'s `_validate_sync`).
fn parse_sync(v: Option<&Value>) -> Result<BTreeMap<Name, ObjType>, ParseError> {
    let mut out = BTreeMap::new();
    let Some(v) = v else {
        return Ok(out);
    };
    let decls = v
        .as_object()
        .ok_or_else(|| ParseError("\"sync\" must be an object".into()))?;
    for (name, spec) in decls {
        let w = format!("sync.{name}");
        if !is_name(name) {
            return Err(ParseError(format!("bad object name {name:?}")));
        }
        let unknown = || ParseError(format!("{w}: unknown object {spec}"));
        let fields = spec.as_object().ok_or_else(unknown)?;
        let ty = fields
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(unknown)?;
        // (parameter field, required, minimum)
        let param: Option<(&str, bool, u64)> = match ty {
            "lock" | "event" | "condition" => None,
            "semaphore" | "bounded_semaphore" => Some(("value", false, 0)),
            "barrier" => Some(("parties", true, 1)),
            "queue" | "lifo_queue" | "priority_queue" => Some(("maxsize", false, 0)),
            _ => return Err(unknown()),
        };
        let mut extra: Vec<&str> = fields
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "type" && param.is_none_or(|(p, _, _)| p != *k))
            .collect();
        if !extra.is_empty() {
            extra.sort_unstable();
            return Err(ParseError(format!("{w}: unexpected fields {extra:?}")));
        }
        let n = match param {
            None => 0,
            Some((p, required, min)) => match fields.get(p) {
                None if required => {
                    return Err(ParseError(format!("{w}: missing field {p:?}")));
                }
                // Python's defaults: Semaphore(1), Queue(0).
                None => usize::from(ty.ends_with("semaphore")),
                Some(x) => match x.as_u64() {
                    Some(n) if (min..=MAX_COUNT).contains(&n) => n as usize,
                    _ => {
                        let kind = if min == 1 { "parties" } else { "count" };
                        return Err(bad(&format!("{w}.{p}"), x, kind));
                    }
                },
            },
        };
        let t = match ty {
            "lock" => ObjType::Lock,
            "event" => ObjType::Event,
            "condition" => ObjType::Condition,
            "semaphore" => ObjType::Semaphore(n),
            "bounded_semaphore" => ObjType::BoundedSemaphore(n),
            "barrier" => ObjType::Barrier(n),
            "queue" => ObjType::Queue(n),
            "lifo_queue" => ObjType::LifoQueue(n),
            _ => ObjType::PriorityQueue(n),
        };
        out.insert(Name::from(name.as_str()), t);
    }
    Ok(out)
}

/// The field kinds of `ref.py`'s `OPS` table.
#[derive(Clone, Copy)]
enum Kind {
    Task,
    Body,
    Tasks,
    Children,
    Block,
    Uint,
    Utime,
    Bool,
    Msg,
    OptMsg,
    Error,
    Value,
    /// An integer value, not `null`.
    Int,
    /// `0..=MAX_COUNT`.
    Count,
    /// A declared object of one of these types.
    Obj(&'static [&'static str]),
}

/// `(field, kind, required)` for every op: `ref.py`'s `OPS`.
fn spec(op: &str) -> Option<&'static [(&'static str, Kind, bool)]> {
    use Kind::*;
    Some(match op {
        "log" => &[("msg", Msg, true)],
        "sleep" => &[("t", Uint, true)],
        "spawn" => &[("task", Task, true), ("body", Body, true)],
        "await" => &[("task", Task, true), ("propagate", Bool, false)],
        "cancel" => &[("task", Task, true), ("msg", OptMsg, false)],
        "state" => &[("task", Task, true)],
        "wait_for" | "shield_wait_for" => &[
            ("task", Task, true),
            ("t", Utime, true),
            ("propagate", Bool, false),
        ],
        "wait_for_body" => &[
            ("body", Body, true),
            ("t", Utime, true),
            ("propagate", Bool, false),
        ],
        "timeout" => &[
            ("t", Utime, true),
            ("block", Block, true),
            ("propagate", Bool, false),
        ],
        "try" => &[
            ("block", Block, true),
            ("on_cancel", Block, false),
            ("reraise", Bool, false),
        ],
        "uncancel" | "cancelling" => &[],
        "gather" => &[
            ("tasks", Tasks, true),
            ("return_exceptions", Bool, false),
            ("propagate", Bool, false),
        ],
        "taskgroup" => &[
            ("children", Children, true),
            ("block", Block, false),
            ("propagate", Bool, false),
        ],
        "raise" => &[("kind", Error, true)],
        "return" => &[("value", Value, false)],
        "acquire" | "release" | "locked" => &[("obj", Obj(LOCKISH), true)],
        "with" => &[("obj", Obj(LOCKISH), true), ("block", Block, true)],
        "set" | "clear" | "is_set" => &[("obj", Obj(EVENT), true)],
        "wait" => &[("obj", Obj(WAITABLE), true)],
        "notify" => &[("obj", Obj(CONDITION), true), ("n", Count, false)],
        "notify_all" => &[("obj", Obj(CONDITION), true)],
        "reset" | "abort" | "barrier_state" => &[("obj", Obj(BARRIER), true)],
        "put" | "put_nowait" => &[("obj", Obj(QUEUE), true), ("value", Int, true)],
        "get" | "get_nowait" | "task_done" | "join" | "qsize" => &[("obj", Obj(QUEUE), true)],
        "qshutdown" => &[("obj", Obj(QUEUE), true), ("immediate", Bool, false)],
        _ => return None,
    })
}

fn bad(w: &str, v: &Value, kind: &str) -> ParseError {
    ParseError(format!("{w}: bad value {v} (expected {kind})"))
}

fn parse_block(v: &Value, cx: &Cx<'_>, w: &str) -> Result<Block, ParseError> {
    let list = v
        .as_array()
        .ok_or_else(|| ParseError(format!("{w}: a block must be a list of statements")))?;
    list.iter()
        .enumerate()
        .map(|(i, st)| parse_stmt(st, cx, &format!("{w}[{i}]")))
        .collect()
}

/// A checked field, ready to be moved into a [`Stmt`].
enum Field {
    Name(Name),
    Names(Vec<Name>),
    Children(Vec<(Name, Name)>),
    Block(Block),
    Time(Time),
    Bool(bool),
    Msg(Option<String>),
    Value(Option<i64>),
    Count(usize),
}

fn parse_field(v: &Value, kind: Kind, cx: &Cx<'_>, w: &str) -> Result<Field, ParseError> {
    let bodies = cx.bodies;
    let name = |what: &str| match v.as_str() {
        Some(s) if is_name(s) => Ok(Name::from(s)),
        _ => Err(bad(w, v, what)),
    };
    let time = |null_ok: bool, what: &str| match v {
        Value::Null if null_ok => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(t) if t <= MAX_TIME => Ok(Some(t as u32)),
            _ => Err(bad(w, v, what)),
        },
        _ => Err(bad(w, v, what)),
    };
    Ok(match kind {
        Kind::Task => Field::Name(name("task")?),
        Kind::Error => Field::Name(name("kind")?),
        Kind::Body => match v.as_str() {
            Some(s) if bodies.contains_key(s) => Field::Name(Name::from(s)),
            _ => return Err(bad(w, v, "body")),
        },
        Kind::Tasks => {
            let list = v.as_array().ok_or_else(|| bad(w, v, "tasks"))?;
            let names = list.iter().map(|x| match x.as_str() {
                Some(s) if is_name(s) => Ok(Name::from(s)),
                _ => Err(bad(w, v, "tasks")),
            });
            Field::Names(names.collect::<Result<_, _>>()?)
        }
        Kind::Children => {
            let list = v.as_array().ok_or_else(|| bad(w, v, "children"))?;
            let kids = list.iter().map(|c| match c.as_array().map(Vec::as_slice) {
                Some([Value::String(t), Value::String(b)])
                    if is_name(t) && bodies.contains_key(b) =>
                {
                    Ok((Name::from(t.as_str()), Name::from(b.as_str())))
                }
                _ => Err(bad(w, v, "children")),
            });
            Field::Children(kids.collect::<Result<_, _>>()?)
        }
        Kind::Block => Field::Block(parse_block(v, cx, w)?),
        Kind::Uint => Field::Time(time(false, "uint")?),
        Kind::Utime => Field::Time(time(true, "utime")?),
        Kind::Bool => Field::Bool(v.as_bool().ok_or_else(|| bad(w, v, "bool"))?),
        Kind::Msg | Kind::OptMsg => match v {
            Value::Null if matches!(kind, Kind::OptMsg) => Field::Msg(None),
            Value::String(s) if is_msg(s) => Field::Msg(Some(s.clone())),
            _ => {
                return Err(bad(
                    w,
                    v,
                    if matches!(kind, Kind::Msg) {
                        "msg"
                    } else {
                        "optmsg"
                    },
                ))
            }
        },
        Kind::Value => match v {
            Value::Null => Field::Value(None),
            Value::Number(n) => match n.as_i64() {
                Some(x) if -VALUE_LIMIT < x && x < VALUE_LIMIT => Field::Value(Some(x)),
                _ => return Err(bad(w, v, "value")),
            },
            _ => return Err(bad(w, v, "value")),
        },
        Kind::Int => match v.as_i64() {
            Some(x) if -VALUE_LIMIT < x && x < VALUE_LIMIT && v.is_number() => {
                Field::Value(Some(x))
            }
            _ => return Err(bad(w, v, "int")),
        },
        Kind::Count => match v.as_u64() {
            Some(n) if n <= MAX_COUNT => Field::Count(n as usize),
            _ => return Err(bad(w, v, "count")),
        },
        Kind::Obj(types) => match v.as_str().and_then(|s| cx.objects.get_key_value(s)) {
            Some((name, t)) if types.contains(&t.name()) => Field::Name(name.clone()),
            _ => return Err(bad(w, v, "object")),
        },
    })
}

fn parse_stmt(v: &Value, cx: &Cx<'_>, w: &str) -> Result<Stmt, ParseError> {
    let unknown = || ParseError(format!("{w}: unknown statement {v}"));
    let obj = v.as_object().ok_or_else(unknown)?;
    let op = obj.get("op").and_then(Value::as_str).ok_or_else(unknown)?;
    let spec = spec(op).ok_or_else(unknown)?;
    let mut extra: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "op" && !spec.iter().any(|(f, _, _)| f == k))
        .collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(ParseError(format!("{w}: unexpected fields {extra:?}")));
    }
    let mut fields: BTreeMap<&str, Field> = BTreeMap::new();
    for &(key, kind, required) in spec {
        match obj.get(key) {
            Some(fv) => {
                fields.insert(key, parse_field(fv, kind, cx, &format!("{w}.{key}"))?);
            }
            None if required => return Err(ParseError(format!("{w}: missing field {key:?}"))),
            None => {}
        }
    }
    let mut take = |k: &str| fields.remove(k);
    let name = |f: Option<Field>| match f {
        Some(Field::Name(n)) => n,
        _ => unreachable!("field checked by spec"),
    };
    let time = |f: Option<Field>| match f {
        Some(Field::Time(t)) => t,
        _ => unreachable!("field checked by spec"),
    };
    let flag = |f: Option<Field>, default: bool| match f {
        Some(Field::Bool(b)) => b,
        None => default,
        _ => unreachable!("field checked by spec"),
    };
    let block = |f: Option<Field>| match f {
        Some(Field::Block(b)) => b,
        None => Block::from([]),
        _ => unreachable!("field checked by spec"),
    };
    let msg = |f: Option<Field>| match f {
        Some(Field::Msg(m)) => m,
        None => None,
        _ => unreachable!("field checked by spec"),
    };
    Ok(match op {
        "log" => Stmt::Log {
            msg: msg(take("msg")).unwrap_or_default(),
        },
        "sleep" => Stmt::Sleep {
            t: time(take("t")).unwrap_or(0),
        },
        "spawn" => Stmt::Spawn {
            task: name(take("task")),
            body: name(take("body")),
        },
        "await" => Stmt::Await {
            task: name(take("task")),
            propagate: flag(take("propagate"), false),
        },
        "cancel" => Stmt::Cancel {
            task: name(take("task")),
            msg: msg(take("msg")),
        },
        "state" => Stmt::State {
            task: name(take("task")),
        },
        "wait_for" => Stmt::WaitFor {
            task: name(take("task")),
            t: time(take("t")),
            propagate: flag(take("propagate"), false),
        },
        "shield_wait_for" => Stmt::ShieldWaitFor {
            task: name(take("task")),
            t: time(take("t")),
            propagate: flag(take("propagate"), false),
        },
        "wait_for_body" => Stmt::WaitForBody {
            body: name(take("body")),
            t: time(take("t")),
            propagate: flag(take("propagate"), false),
        },
        "timeout" => Stmt::Timeout {
            t: time(take("t")),
            block: block(take("block")),
            propagate: flag(take("propagate"), false),
        },
        "try" => Stmt::Try {
            block: block(take("block")),
            on_cancel: block(take("on_cancel")),
            reraise: flag(take("reraise"), true),
        },
        "uncancel" => Stmt::Uncancel,
        "cancelling" => Stmt::Cancelling,
        "gather" => Stmt::Gather {
            tasks: match take("tasks") {
                Some(Field::Names(n)) => n,
                _ => unreachable!("field checked by spec"),
            },
            return_exceptions: flag(take("return_exceptions"), false),
            propagate: flag(take("propagate"), false),
        },
        "taskgroup" => Stmt::TaskGroup {
            children: match take("children") {
                Some(Field::Children(c)) => c,
                _ => unreachable!("field checked by spec"),
            },
            block: block(take("block")),
            propagate: flag(take("propagate"), false),
        },
        "raise" => Stmt::Raise {
            kind: name(take("kind")),
        },
        "return" => Stmt::Return {
            value: match take("value") {
                Some(Field::Value(v)) => v,
                None => None,
                _ => unreachable!("field checked by spec"),
            },
        },
        "with" => Stmt::With {
            obj: name(take("obj")),
            block: block(take("block")),
        },
        _ => {
            let int = |f: Option<Field>| match f {
                Some(Field::Value(Some(v))) => v,
                _ => unreachable!("field checked by spec"),
            };
            let op = match op {
                "acquire" => ObjOp::Acquire,
                "release" => ObjOp::Release,
                "locked" => ObjOp::Locked,
                "set" => ObjOp::Set,
                "clear" => ObjOp::Clear,
                "is_set" => ObjOp::IsSet,
                "wait" => ObjOp::Wait,
                "notify" => ObjOp::Notify(match take("n") {
                    Some(Field::Count(n)) => n,
                    None => 1,
                    _ => unreachable!("field checked by spec"),
                }),
                "notify_all" => ObjOp::NotifyAll,
                "reset" => ObjOp::Reset,
                "abort" => ObjOp::Abort,
                "barrier_state" => ObjOp::BarrierState,
                "put" => ObjOp::Put(int(take("value"))),
                "put_nowait" => ObjOp::PutNowait(int(take("value"))),
                "get" => ObjOp::Get,
                "get_nowait" => ObjOp::GetNowait,
                "task_done" => ObjOp::TaskDone,
                "join" => ObjOp::Join,
                "qsize" => ObjOp::Qsize,
                "qshutdown" => ObjOp::Qshutdown {
                    immediate: flag(take("immediate"), false),
                },
                _ => unreachable!("op checked by spec"),
            };
            Stmt::Obj {
                op,
                obj: name(take("obj")),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(main: &str) -> Result<Program, ParseError> {
        Program::parse(&format!(r#"{{"bodies":{{"main":{main},"b":[]}}}}"#))
    }

    fn one(st: &str) -> Stmt {
        prog(&format!("[{st}]")).unwrap().main()[0].clone()
    }

    fn err(st: &str) -> String {
        prog(&format!("[{st}]")).unwrap_err().0
    }

    #[test]
    fn parses_every_op() {
        let t = Name::from("t");
        let b = Name::from("b");
        assert_eq!(
            one(r#"{"op":"log","msg":"hi there"}"#),
            Stmt::Log {
                msg: "hi there".into()
            }
        );
        assert_eq!(one(r#"{"op":"sleep","t":0}"#), Stmt::Sleep { t: 0 });
        assert_eq!(
            one(r#"{"op":"spawn","task":"t","body":"b"}"#),
            Stmt::Spawn {
                task: t.clone(),
                body: b.clone()
            }
        );
        assert_eq!(
            one(r#"{"op":"await","task":"t","propagate":true}"#),
            Stmt::Await {
                task: t.clone(),
                propagate: true
            }
        );
        assert_eq!(
            one(r#"{"op":"cancel","task":"t","msg":"m1"}"#),
            Stmt::Cancel {
                task: t.clone(),
                msg: Some("m1".into())
            }
        );
        assert_eq!(
            one(r#"{"op":"cancel","task":"t","msg":null}"#),
            Stmt::Cancel {
                task: t.clone(),
                msg: None
            }
        );
        assert_eq!(
            one(r#"{"op":"state","task":"t"}"#),
            Stmt::State { task: t.clone() }
        );
        assert_eq!(
            one(r#"{"op":"wait_for","task":"t","t":null}"#),
            Stmt::WaitFor {
                task: t.clone(),
                t: None,
                propagate: false
            }
        );
        assert_eq!(
            one(r#"{"op":"wait_for_body","body":"b","t":0}"#),
            Stmt::WaitForBody {
                body: b.clone(),
                t: Some(0),
                propagate: false
            }
        );
        assert_eq!(
            one(r#"{"op":"shield_wait_for","task":"t","t":4,"propagate":false}"#),
            Stmt::ShieldWaitFor {
                task: t.clone(),
                t: Some(4),
                propagate: false
            }
        );
        assert_eq!(
            one(r#"{"op":"timeout","t":3,"block":[{"op":"sleep","t":1}],"propagate":true}"#),
            Stmt::Timeout {
                t: Some(3),
                block: Block::from([Stmt::Sleep { t: 1 }]),
                propagate: true
            }
        );
        assert_eq!(
            one(r#"{"op":"try","block":[]}"#),
            Stmt::Try {
                block: Block::from([]),
                on_cancel: Block::from([]),
                reraise: true
            }
        );
        assert_eq!(
            one(
                r#"{"op":"try","block":[{"op":"uncancel"}],"on_cancel":[{"op":"cancelling"}],"reraise":false}"#
            ),
            Stmt::Try {
                block: Block::from([Stmt::Uncancel]),
                on_cancel: Block::from([Stmt::Cancelling]),
                reraise: false
            }
        );
        assert_eq!(
            one(r#"{"op":"gather","tasks":["t","u"],"return_exceptions":true}"#),
            Stmt::Gather {
                tasks: vec![t.clone(), "u".into()],
                return_exceptions: true,
                propagate: false
            }
        );
        assert_eq!(
            one(r#"{"op":"taskgroup","children":[["t","b"]]}"#),
            Stmt::TaskGroup {
                children: vec![(t.clone(), b.clone())],
                block: Block::from([]),
                propagate: false
            }
        );
        assert_eq!(
            one(r#"{"op":"raise","kind":"E1"}"#),
            Stmt::Raise { kind: "E1".into() }
        );
        assert_eq!(one(r#"{"op":"return"}"#), Stmt::Return { value: None });
        assert_eq!(
            one(r#"{"op":"return","value":-7}"#),
            Stmt::Return { value: Some(-7) }
        );
        assert_eq!(
            one(r#"{"op":"return","value":null}"#),
            Stmt::Return { value: None }
        );
    }

    #[test]
    fn rejects_what_ref_py_rejects() {
        assert!(err(r#"{"op":"nope"}"#).contains("unknown statement"));
        assert!(err(r#"{"msg":"x"}"#).contains("unknown statement"));
        assert!(err(r#"{"op":"log","msg":"x","t":1}"#).contains("unexpected fields [\"t\"]"));
        assert!(err(r#"{"op":"log"}"#).contains("missing field \"msg\""));
        assert!(err(r#"{"op":"log","msg":"a\"b"}"#).contains("expected msg"));
        assert!(err(r#"{"op":"log","msg":"é"}"#).contains("expected msg"));
        assert!(
            err(&format!(r#"{{"op":"log","msg":"{}"}}"#, "x".repeat(61))).contains("expected msg")
        );
        assert!(err(r#"{"op":"sleep","t":-1}"#).contains("expected uint"));
        assert!(err(r#"{"op":"sleep","t":null}"#).contains("expected uint"));
        assert!(err(r#"{"op":"sleep","t":1.5}"#).contains("expected uint"));
        assert!(err(r#"{"op":"sleep","t":1.0}"#).contains("expected uint"));
        assert!(err(r#"{"op":"sleep","t":true}"#).contains("expected uint"));
        assert!(err(r#"{"op":"sleep","t":1000001}"#).contains("expected uint"));
        assert!(err(r#"{"op":"spawn","task":"t","body":"missing"}"#).contains("expected body"));
        assert!(err(r#"{"op":"spawn","task":"9t","body":"b"}"#).contains("expected task"));
        assert!(
            err(&format!(r#"{{"op":"state","task":"{}"}}"#, "a".repeat(33)))
                .contains("expected task")
        );
        assert!(err(r#"{"op":"await","task":"t","propagate":1}"#).contains("expected bool"));
        assert!(err(r#"{"op":"return","value":9007199254740992}"#).contains("expected value"));
        assert!(err(r#"{"op":"return","value":"1"}"#).contains("expected value"));
        assert!(err(r#"{"op":"gather","tasks":"t"}"#).contains("expected tasks"));
        assert!(err(r#"{"op":"taskgroup","children":[["t"]]}"#).contains("expected children"));
        assert!(err(r#"{"op":"taskgroup","children":[["t","zz"]]}"#).contains("expected children"));
        assert!(err(r#"{"op":"try","block":{}}"#).contains("a block must be a list"));
        assert_eq!(
            err(r#"{"op":"timeout","t":1,"block":[{"op":"sleep","t":-2}]}"#),
            "body main[0].block[0].t: bad value -2 (expected uint)"
        );
        assert!(Program::parse("[]").is_err());
        assert!(Program::parse(r#"{"bodies":{"b":[]}}"#).is_err());
        assert!(Program::parse(r#"{"bodies":{"main":[],"1x":[]}}"#).is_err());
        assert!(Program::parse("{").unwrap_err().0.starts_with("bad JSON"));
    }

    const SYNC: &str = r#""sync":{"L":{"type":"lock"},"E":{"type":"event"},"C":{"type":"condition"},
        "S":{"type":"semaphore"},"BS":{"type":"bounded_semaphore","value":2},
        "B":{"type":"barrier","parties":3},"Q":{"type":"queue","maxsize":1},
        "LQ":{"type":"lifo_queue"},"PQ":{"type":"priority_queue","maxsize":0}}"#;

    fn sync_prog(main: &str) -> Result<Program, ParseError> {
        Program::parse(&format!(r#"{{{SYNC},"bodies":{{"main":{main}}}}}"#))
    }

    fn sync_one(st: &str) -> Stmt {
        sync_prog(&format!("[{st}]")).unwrap().main()[0].clone()
    }

    fn sync_err(st: &str) -> String {
        sync_prog(&format!("[{st}]")).unwrap_err().0
    }

    #[test]
    fn parses_sync_declarations_and_ops() {
        let p = sync_prog("[]").unwrap();
        let t = |n: &str| p.objects[n];
        assert_eq!(t("L"), ObjType::Lock);
        assert_eq!(t("S"), ObjType::Semaphore(1));
        assert_eq!(t("BS"), ObjType::BoundedSemaphore(2));
        assert_eq!(t("B"), ObjType::Barrier(3));
        assert_eq!(t("Q"), ObjType::Queue(1));
        assert_eq!(t("LQ"), ObjType::LifoQueue(0));
        assert_eq!(t("PQ"), ObjType::PriorityQueue(0));
        let obj = |op, obj: &str| Stmt::Obj {
            op,
            obj: obj.into(),
        };
        for (st, want) in [
            (r#"{"op":"acquire","obj":"L"}"#, obj(ObjOp::Acquire, "L")),
            (r#"{"op":"release","obj":"BS"}"#, obj(ObjOp::Release, "BS")),
            (r#"{"op":"locked","obj":"C"}"#, obj(ObjOp::Locked, "C")),
            (r#"{"op":"set","obj":"E"}"#, obj(ObjOp::Set, "E")),
            (r#"{"op":"wait","obj":"B"}"#, obj(ObjOp::Wait, "B")),
            (r#"{"op":"notify","obj":"C"}"#, obj(ObjOp::Notify(1), "C")),
            (
                r#"{"op":"notify","obj":"C","n":0}"#,
                obj(ObjOp::Notify(0), "C"),
            ),
            (
                r#"{"op":"put","obj":"PQ","value":-3}"#,
                obj(ObjOp::Put(-3), "PQ"),
            ),
            (
                r#"{"op":"qshutdown","obj":"Q"}"#,
                obj(ObjOp::Qshutdown { immediate: false }, "Q"),
            ),
            (
                r#"{"op":"qshutdown","obj":"Q","immediate":true}"#,
                obj(ObjOp::Qshutdown { immediate: true }, "Q"),
            ),
        ] {
            assert_eq!(sync_one(st), want, "{st}");
        }
        assert_eq!(
            sync_one(r#"{"op":"with","obj":"S","block":[{"op":"uncancel"}]}"#),
            Stmt::With {
                obj: "S".into(),
                block: Block::from([Stmt::Uncancel]),
            }
        );
        let p = sync_prog(r#"[{"op":"with","obj":"L","block":[{"op":"get","obj":"Q"}]}]"#).unwrap();
        assert_eq!(p.ops(), vec!["get", "with"]);
    }

    #[test]
    fn rejects_bad_sync_programs() {
        assert!(sync_err(r#"{"op":"acquire","obj":"E"}"#).contains("expected object"));
        assert!(sync_err(r#"{"op":"get","obj":"nope"}"#).contains("expected object"));
        assert!(sync_err(r#"{"op":"wait","obj":"Q"}"#).contains("expected object"));
        assert!(sync_err(r#"{"op":"put","obj":"Q"}"#).contains("missing field \"value\""));
        assert!(sync_err(r#"{"op":"put","obj":"Q","value":null}"#).contains("expected int"));
        assert!(sync_err(r#"{"op":"notify","obj":"C","n":-1}"#).contains("expected count"));
        assert!(sync_err(r#"{"op":"set","obj":"E","value":1}"#).contains("unexpected fields"));
        let decl = |d: &str| {
            Program::parse(&format!(r#"{{"sync":{d},"bodies":{{"main":[]}}}}"#))
                .unwrap_err()
                .0
        };
        assert!(decl("[]").contains("must be an object"));
        assert!(decl(r#"{"1x":{"type":"lock"}}"#).contains("bad object name"));
        assert!(decl(r#"{"X":{"type":"mutex"}}"#).contains("unknown object"));
        assert!(decl(r#"{"X":{"type":"lock","value":1}}"#).contains("unexpected fields"));
        assert!(decl(r#"{"X":{"type":"barrier"}}"#).contains("missing field \"parties\""));
        assert!(decl(r#"{"X":{"type":"barrier","parties":0}}"#).contains("expected parties"));
        assert!(decl(r#"{"X":{"type":"queue","maxsize":1001}}"#).contains("expected count"));
    }

    #[test]
    fn names_and_messages() {
        assert!(is_name("_"));
        assert!(is_name("t1"));
        assert!(is_name(&"a".repeat(32)));
        assert!(!is_name(""));
        assert!(!is_name("1t"));
        assert!(!is_name("a-b"));
        assert!(is_msg(""));
        assert!(is_msg("hello world ~!#"));
        assert!(!is_msg("tab\there"));
        assert!(!is_msg("back\\slash"));
    }

    #[test]
    fn program_helpers() {
        let p = Program::parse(
            r#"{"name":"p","seed":3,"bodies":{"main":[{"op":"try","block":[{"op":"gather","tasks":[]}],
                "on_cancel":[{"op":"log","msg":"x"}]}],"b":[{"op":"return"}]}}"#,
        )
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("p"));
        assert_eq!(p.ops(), vec!["gather", "log", "return", "try"]);
        assert_eq!(p.statements().len(), 4);
        assert_eq!(p.main().len(), 1);
    }
}
