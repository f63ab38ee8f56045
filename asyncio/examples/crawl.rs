//! A crawler on virtual time: a `TaskGroup` "fetches" the pages of a small
//! simulated web, each fetch with a timeout, every page found adding its
//! links to the same group. Latencies are simulated with `sleep`, so the
//! whole crawl takes microseconds and prints the same timeline every run.
//!
//! ```sh
//! cargo run --example crawl
//! ```
//!
//! Part 1 crawls the site: slow pages time out and are skipped, the others
//! are fetched concurrently, and the group ends once every page is done.
//! Part 2 fetches a list of pages strictly: one broken link fails the group,
//! which cancels the fetches still running and reports the error.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use asyncio::{CancelledError, TaskGroup, TaskGroupError};

/// One page of the simulated web: how long the server takes, and its links.
struct Page {
    url: &'static str,
    latency_ms: u64,
    links: &'static [&'static str],
}

const WEB: &[Page] = &[
    Page {
        url: "/",
        latency_ms: 120,
        links: &["/docs", "/blog", "/about"],
    },
    Page {
        url: "/docs",
        latency_ms: 300,
        links: &["/docs/tasks", "/docs/timeouts", "/"],
    },
    Page {
        url: "/blog",
        latency_ms: 80,
        links: &["/blog/2024", "/blog/slow-post"],
    },
    Page {
        url: "/about",
        latency_ms: 40,
        links: &[],
    },
    Page {
        url: "/docs/tasks",
        latency_ms: 200,
        links: &["/docs/timeouts"],
    },
    Page {
        url: "/docs/timeouts",
        latency_ms: 150,
        links: &[],
    },
    Page {
        url: "/blog/2024",
        latency_ms: 60,
        links: &["/missing"],
    },
    Page {
        url: "/blog/slow-post",
        latency_ms: 5_000,
        links: &[],
    },
];

/// Per-page time limit.
const PAGE_TIMEOUT: Duration = Duration::from_millis(1_000);

#[derive(Debug)]
enum FetchError {
    Cancelled(CancelledError),
    NotFound(&'static str),
}

impl From<CancelledError> for FetchError {
    fn from(e: CancelledError) -> Self {
        FetchError::Cancelled(e)
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Cancelled(e) => write!(f, "{e}"),
            FetchError::NotFound(url) => write!(f, "404 {url}"),
        }
    }
}

/// Milliseconds of virtual time since `start`.
fn at(start: Instant) -> String {
    let lp = asyncio::get_running_loop().expect("inside the loop");
    format!("[{:>5} ms]", (lp.time() - start).as_millis())
}

/// "Downloads" a page: waits for its latency; a URL not on the web is a 404.
async fn fetch(url: &'static str) -> Result<&'static Page, FetchError> {
    let Some(page) = WEB.iter().find(|p| p.url == url) else {
        asyncio::sleep(Duration::from_millis(30)).await?;
        return Err(FetchError::NotFound(url));
    };
    asyncio::sleep(Duration::from_millis(page.latency_ms)).await?;
    Ok(page)
}

/// Part 1: fetch `url` with a timeout, then crawl its links in the same
/// group. A timeout or a 404 skips the page; only a cancellation propagates.
fn crawl(
    tg: TaskGroup<FetchError>,
    url: &'static str,
    seen: Rc<RefCell<BTreeSet<&'static str>>>,
    start: Instant,
) {
    if !seen.borrow_mut().insert(url) {
        return;
    }
    let group = tg.clone();
    let spawned = tg.create_task(async move {
        match asyncio::timeout(PAGE_TIMEOUT, fetch(url)).await {
            Err(_timeout) => println!("{} {url:<16} timed out, skipped", at(start)),
            Ok(Err(FetchError::NotFound(u))) => println!("{} {u:<16} 404, skipped", at(start)),
            Ok(Err(cancelled)) => return Err(cancelled),
            Ok(Ok(page)) => {
                println!(
                    "{} {url:<16} fetched, {} links",
                    at(start),
                    page.links.len()
                );
                for link in page.links {
                    crawl(group.clone(), link, seen.clone(), start);
                }
            }
        }
        Ok(())
    });
    if let Err(e) = spawned {
        println!("{} {url:<16} not fetched: {e}", at(start));
    }
}

async fn site_crawl() {
    let start = asyncio::get_running_loop().unwrap().time();
    println!(
        "Part 1: crawl the site, {} ms per page at most",
        PAGE_TIMEOUT.as_millis()
    );
    let seen = Rc::new(RefCell::new(BTreeSet::new()));
    let s = seen.clone();
    let result = TaskGroup::run(|tg| async move {
        crawl(tg, "/", s, start);
        Ok::<_, FetchError>(())
    })
    .await;
    match result {
        Ok(()) => println!(
            "{} crawl done: {} URLs seen",
            at(start),
            seen.borrow().len()
        ),
        Err(e) => println!("{} crawl failed: {e}", at(start)),
    }
}

/// Part 2: every page must be fetched; the first error fails the group,
/// which cancels the fetches still running.
async fn strict_fetch() {
    let start = asyncio::get_running_loop().unwrap().time();
    println!("\nPart 2: fetch a list strictly (one error fails them all)");
    let urls = ["/docs", "/about", "/missing", "/docs/tasks"];
    let result = TaskGroup::run(|tg| async move {
        let mut tasks = Vec::new();
        for url in urls {
            let task = tg
                .create_task(async move {
                    match fetch(url).await {
                        Ok(page) => {
                            println!("{} {url:<16} fetched", at(start));
                            Ok(page.url)
                        }
                        Err(FetchError::Cancelled(c)) => {
                            println!("{} {url:<16} cancelled", at(start));
                            Err(c.into())
                        }
                        Err(e) => Err(e),
                    }
                })
                .expect("the group is open");
            tasks.push(task);
        }
        let mut pages = Vec::new();
        for task in tasks {
            pages.push(task.await?.expect("the group reports failures"));
        }
        Ok(pages)
    })
    .await;
    match result {
        Ok(pages) => println!("{} all fetched: {pages:?}", at(start)),
        Err(TaskGroupError::Failed(failures)) => {
            for f in &failures {
                println!("{} the group failed: {f}", at(start));
            }
        }
        Err(TaskGroupError::Cancelled(e)) => println!("{} cancelled: {e}", at(start)),
    }
}

fn main() {
    let mut runner = asyncio::Runner::builder().virtual_time(true).build();
    runner.run(site_crawl());
    runner.run(strict_fetch());
}
