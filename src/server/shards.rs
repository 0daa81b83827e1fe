//! Thread-per-core serving: each client connection lives on one of N single-threaded
//! runtimes for its whole life, and so does every backend connection it checks out
//! (the backend pool keeps one list per shard). A transfer's chunks then move from the
//! client's socket to the backend's on one thread, with no hand-over between worker
//! threads: on the shared multi-threaded runtime a large transfer's two connections
//! usually ran on different threads and woke each other for every chunk.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// The shard this thread serves (1-based), or 0 off the shards.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The shard the calling thread serves: 1..=N on a shard's thread, 0 elsewhere.
pub fn current() -> usize {
    CURRENT.with(Cell::get)
}

/// How long a stopping shard waits for its blocking tasks (file I/O of the embedded
/// backend, audit writes) before it lets its thread go.
const STOP_WAIT: Duration = Duration::from_secs(5);

struct Shard {
    handle: Handle,
    /// Connections the shard serves now.
    load: Arc<AtomicUsize>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The running shards.
pub struct Shards {
    shards: Vec<Shard>,
    /// Where the next tie between equally loaded shards is broken.
    next: AtomicUsize,
}

/// Counts a connection against its shard's load for as long as it lives.
pub struct Placed(Arc<AtomicUsize>);

impl Drop for Placed {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shards {
    /// Starts `n` shard threads, each running a single-threaded runtime.
    pub fn start(n: usize) -> std::io::Result<Shards> {
        let mut shards = Vec::with_capacity(n);
        for i in 1..=n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("sealgate-shard-{i}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(i));
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    runtime.shutdown_timeout(STOP_WAIT);
                })?;
            shards.push(Shard {
                handle,
                load: Arc::new(AtomicUsize::new(0)),
                stop: Mutex::new(Some(stop)),
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(Shards {
            shards,
            next: AtomicUsize::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.shards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Runs `make(placed)`'s future on the least loaded shard; ties go round-robin, so
    /// connections that arrive together spread over the shards.
    pub fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce(Placed) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let n = self.shards.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let Some(shard) = (0..n)
            .map(|k| &self.shards[(start + k) % n])
            .min_by_key(|s| s.load.load(Ordering::Relaxed))
        else {
            return;
        };
        shard.load.fetch_add(1, Ordering::Relaxed);
        let placed = Placed(shard.load.clone());
        // The future is built on the shard's thread, so the socket it wraps registers
        // with the shard's own I/O driver.
        shard.handle.spawn(async move { make(placed).await });
    }

    /// Stops every shard and waits for its thread: tasks still running are dropped.
    /// Blocks; call it off the async workers.
    pub fn stop(&self) {
        for shard in &self.shards {
            if let Some(stop) = lock(&shard.stop).take() {
                let _ = stop.send(());
            }
        }
        for shard in &self.shards {
            if let Some(thread) = lock(&shard.thread).take() {
                let _ = thread.join();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spawns a task that reports its shard and then holds its place until `release`.
    fn place(
        shards: &Shards,
        release: &tokio::sync::watch::Receiver<bool>,
    ) -> oneshot::Receiver<usize> {
        let (tx, rx) = oneshot::channel();
        let mut release = release.clone();
        shards.spawn(move |placed| async move {
            let _ = tx.send(current());
            let _ = release.wait_for(|r| *r).await;
            drop(placed);
        });
        rx
    }

    #[tokio::test]
    async fn connections_spread_over_the_least_loaded_shards_and_run_there() {
        let shards = Shards::start(3).unwrap();
        assert_eq!(current(), 0, "the test's own thread is no shard");
        let (release, held) = tokio::sync::watch::channel(false);
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(place(&shards, &held).await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            [1, 1, 2, 2, 3, 3],
            "two connections on each of three shards"
        );

        release.send(true).unwrap();
        // Every place is given back once its task ends.
        for _ in 0..100 {
            if shards
                .shards
                .iter()
                .all(|s| s.load.load(Ordering::Relaxed) == 0)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let loads: Vec<usize> = shards
            .shards
            .iter()
            .map(|s| s.load.load(Ordering::Relaxed))
            .collect();
        assert_eq!(loads, [0, 0, 0]);

        // The next free shard is taken even where round-robin would pick a busy one.
        let (_keep, long_held) = tokio::sync::watch::channel(false);
        let (end_b, b_held) = tokio::sync::watch::channel(false);
        let a = place(&shards, &long_held).await.unwrap();
        let b = place(&shards, &b_held).await.unwrap();
        let c = place(&shards, &long_held).await.unwrap();
        assert_eq!([a, b, c], [1, 2, 3]);
        end_b.send(true).unwrap();
        while shards.shards[1].load.load(Ordering::Relaxed) != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(place(&shards, &long_held).await.unwrap(), b);
        tokio::task::spawn_blocking(move || shards.stop())
            .await
            .unwrap();
    }

    #[test]
    fn stop_ends_every_shard_thread_and_drops_its_tasks() {
        let shards = Shards::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        for _ in 0..2 {
            let tx = tx.clone();
            // Never ends on its own; its sender is dropped when the shard drops it.
            shards.spawn(move |_placed| async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            });
        }
        drop(tx);
        shards.stop();
        assert!(shards.shards.iter().all(|s| lock(&s.thread).is_none()));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
            "the tasks were dropped with their shards"
        );
    }
}
