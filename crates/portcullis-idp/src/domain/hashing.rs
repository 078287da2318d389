//! Password hashing at a bounded cost. A fixed number of argon2id workers each own one memory
//! block, reused for every hash, behind an admission queue of bounded depth: beyond it a hash is
//! refused at once ([`HashError::Busy`]) instead of waiting without bound. A flood of sign-ins then
//! costs neither memory (at most `workers` blocks of 19 MiB, whatever the load) nor the latency
//! of everyone else's sign-in. A block left unused for [`IDLE_RELEASE_MS`] is given back to the
//! operating system ([`Hasher::release_idle`]), so a pool that served sign-ins returns to its
//! baseline.

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use portcullis_core::Clock;
use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// How long a free memory block stays allocated unused before [`Hasher::release_idle`] frees it.
pub const IDLE_RELEASE_MS: i64 = 30_000;

/// Capacity of a memory block, in blocks: 33 MiB, above the largest mmap threshold glibc's malloc
/// ever moves to by itself (32 MiB; it raises the threshold to the size of each mapped chunk
/// freed), so a block is always a mapping of its own and freeing it unmaps it. Only the
/// [`block_count`] blocks argon2 uses are ever touched, so the rest costs address space, not RSS.
const MAPPED_CAPACITY: usize = (33 << 20) / Block::SIZE;

/// Why a hash was not computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full: shed the request (503 / `TooManyRequests`).
    #[error("every hashing worker is busy and the queue is full")]
    Busy,
    /// argon2 or the random source failed, or the stored hash is unreadable.
    #[error("argon2 failed")]
    Failed,
}

/// A memory block that no worker holds, and when it was last given back.
struct FreeBlock {
    memory: Vec<Block>,
    since_ms: i64,
}

/// The pool's hashing workers, their memory and their queue.
pub struct Hasher {
    /// Workers plus queue: a hash that cannot take one is refused at once.
    admission: Semaphore,
    /// One per worker; a holder owns one memory block.
    workers: Semaphore,
    /// Free memory blocks (at most one per idle worker), the most recently used last.
    blocks: Mutex<Vec<FreeBlock>>,
    /// Memory blocks allocated now, free or held (never more than the workers).
    allocated: AtomicUsize,
    /// Password verifications run (argon2 computations against a stored hash).
    verifications: Counter,
    /// Hashes refused because the queue was full.
    shed: Counter,
    params: Params,
    /// The pool's time: how long a free block has been unused.
    clock: Arc<Clock>,
}

/// Blocks of one argon2id computation at the parameters the pool hashes with.
fn block_count() -> usize {
    Params::DEFAULT.block_count()
}

/// A zeroed memory block in a mapping of its own (see [`MAPPED_CAPACITY`]).
fn new_block() -> Vec<Block> {
    let mut memory = Vec::with_capacity(MAPPED_CAPACITY.max(block_count()));
    memory.resize(block_count(), Block::new());
    memory
}

impl Hasher {
    /// `workers` hashes at once, `queue` more waiting; no memory until the first hash. The
    /// counters are the pool's metrics; `clock` is the pool's time.
    pub fn new(
        workers: usize,
        queue: usize,
        shed: Counter,
        verifications: Counter,
        clock: Arc<Clock>,
    ) -> Hasher {
        let workers = workers.max(1);
        Hasher {
            admission: Semaphore::new(workers + queue),
            workers: Semaphore::new(workers),
            blocks: Mutex::new(Vec::new()),
            allocated: AtomicUsize::new(0),
            verifications,
            shed,
            params: Params::DEFAULT,
            clock,
        }
    }

    /// Memory blocks allocated now (never more than the workers; 0 once all have been released).
    pub fn allocated_blocks(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Password verifications computed so far.
    pub fn verifications(&self) -> u64 {
        self.verifications.get()
    }

    /// Hashes refused because the queue was full.
    pub fn shed(&self) -> u64 {
        self.shed.get()
    }

    /// Frees every memory block that has not been used for [`IDLE_RELEASE_MS`] of the pool's
    /// time, and returns how many it freed. Cheap when there is nothing to free: the pool's
    /// server calls it every few seconds.
    pub fn release_idle(&self) -> usize {
        let now = self.clock.now_ms();
        let idle: Vec<FreeBlock> = {
            let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
            if blocks.is_empty() {
                return 0;
            }
            blocks
                .extract_if(.., |b| now.saturating_sub(b.since_ms) >= IDLE_RELEASE_MS)
                .collect()
        };
        if !idle.is_empty() {
            self.allocated.fetch_sub(idle.len(), Ordering::Relaxed);
            tracing::debug!(blocks = idle.len(), "argon2 memory released after idling");
        }
        idle.len()
    }

    /// A place in the queue, taken at once or refused (`Busy`): callers take it before any
    /// other work (a lockout reservation), so a shed request costs nothing else.
    pub fn admit(&self) -> Result<Admission<'_>, HashError> {
        match self.admission.try_acquire() {
            Ok(permit) => Ok(Admission {
                hasher: self,
                _permit: permit,
            }),
            Err(_) => {
                self.shed.inc();
                Err(HashError::Busy)
            }
        }
    }

    /// Hashes a new password (see [`Admission::hash`]), shedding when the queue is full.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        self.admit()?.hash(password).await
    }

    /// Checks a password (see [`Admission::verify`]), shedding when the queue is full.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<bool, HashError> {
        self.admit()?.verify(password, stored).await
    }

    /// The most recently used free block, or `None` (and one more block counted) when none is
    /// free: the caller allocates it on the blocking thread. Only while fewer blocks than workers
    /// exist: a caller holds a worker permit, so at most `workers` are out at once.
    fn take_block(&self) -> Option<Vec<Block>> {
        if let Some(b) = self.blocks.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Some(b.memory);
        }
        self.allocated.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Gives a block back, marked with the time it was last used.
    fn put_block(&self, memory: Vec<Block>) {
        let since_ms = self.clock.now_ms();
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(FreeBlock { memory, since_ms });
    }
}

/// A place in the hashing queue.
pub struct Admission<'a> {
    hasher: &'a Hasher,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Admission<'_> {
    /// Hashes a new password (argon2id, m=19456 KiB, t=2, p=1, 16-byte salt) into a PHC string.
    pub async fn hash(self, password: &str) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| HashError::Failed)?;
        let pw = password.as_bytes().to_vec();
        let params = self.hasher.params.clone();
        self.run(move |mem| {
            let salt = Salt::new(&salt).map_err(|_| HashError::Failed)?;
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
                .hash_password_into_with_memory(&pw, salt.as_ref(), &mut out, mem)
                .map_err(|_| HashError::Failed)?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params).map_err(|_| HashError::Failed)?,
                salt: Some(salt),
                hash: Some(Output::new(&out).map_err(|_| HashError::Failed)?),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Whether `password` matches the PHC string `stored` (compared in constant time).
    pub async fn verify(self, password: &str, stored: &str) -> Result<bool, HashError> {
        let hasher = self.hasher;
        let pw = password.as_bytes().to_vec();
        let stored = stored.to_string();
        let limit = block_count();
        let result = self
            .run(move |mem| {
                let phc = PasswordHash::new(&stored).map_err(|_| HashError::Failed)?;
                let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
                    return Err(HashError::Failed);
                };
                let algorithm =
                    Algorithm::try_from(phc.algorithm.as_str()).map_err(|_| HashError::Failed)?;
                let version = match phc.version {
                    Some(v) => Version::try_from(v).map_err(|_| HashError::Failed)?,
                    None => Version::default(),
                };
                let params = Params::try_from(&phc).map_err(|_| HashError::Failed)?;
                // A hash needing more memory than a worker owns is refused, never allocated.
                if params.block_count() > limit {
                    tracing::error!("a stored password hash needs more memory than allowed");
                    return Err(HashError::Failed);
                }
                let mut out = vec![0u8; expected.len()];
                Argon2::new(algorithm, version, params)
                    .hash_password_into_with_memory(&pw, salt.as_ref(), &mut out, mem)
                    .map_err(|_| HashError::Failed)?;
                Ok(
                    aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_ref())
                        .is_ok(),
                )
            })
            .await;
        if result.is_ok() {
            hasher.verifications.inc();
        }
        result
    }

    /// Runs `f` on a blocking thread with a worker's memory block, after waiting for a worker.
    async fn run<T, F>(self, f: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&mut [Block]) -> Result<T, HashError> + Send + 'static,
    {
        let h = self.hasher;
        let _worker = h.workers.acquire().await.map_err(|_| HashError::Failed)?;
        let block = h.take_block();
        let (block, result) = tokio::task::spawn_blocking(move || {
            // A new block is allocated and zeroed here, off the async threads.
            let mut block = block.unwrap_or_else(new_block);
            let r = f(&mut block);
            (block, r)
        })
        .await
        .map_err(|_| {
            // The block is lost with the task; the next hash allocates another.
            h.allocated.fetch_sub(1, Ordering::Relaxed);
            HashError::Failed
        })?;
        h.put_block(block);
        result
    }
}

/// Hashes a password with argon2id at the OWASP defaults (m=19456 KiB, t=2, p=1).
pub fn hash_password(password: &str) -> Option<String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .ok()
        .map(|h| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_both_ways_with_the_argon2_crate() {
        let h = Hasher::new(1, 0, Counter::default(), Counter::default(), Arc::default());
        let phc = h.hash("Correct-horse-9!").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            Argon2::default()
                .verify_password(b"Correct-horse-9!", phc.as_str())
                .is_ok()
        );
        assert_eq!(h.verify("Correct-horse-9!", &phc).await, Ok(true));
        assert_eq!(h.verify("wrong", &phc).await, Ok(false));
        let old = super::hash_password("legacy-1").unwrap();
        assert_eq!(h.verify("legacy-1", &old).await, Ok(true));
        assert_eq!(h.verify("x", "not a hash").await, Err(HashError::Failed));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_is_shed_and_memory_stays_one_block_per_worker() {
        let h = Arc::new(Hasher::new(
            2,
            3,
            Counter::default(),
            Counter::default(),
            Arc::default(),
        ));
        let phc = h.hash("pw").await.unwrap();
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (h, phc) = (h.clone(), phc.clone());
                tokio::spawn(async move { h.verify("guess", &phc).await })
            })
            .collect();
        let mut busy = 0u64;
        let mut checked = 0u64;
        for t in tasks {
            match t.await.unwrap() {
                Err(HashError::Busy) => busy += 1,
                Ok(false) => checked += 1,
                other => panic!("{other:?}"),
            }
        }
        // Beyond the 2 workers and 3 waiting places, requests were refused without waiting.
        assert!(
            busy > 0 && checked + busy == 40,
            "checked {checked}, busy {busy}"
        );
        assert_eq!(h.shed(), busy);
        assert!(h.allocated_blocks() <= 2, "{}", h.allocated_blocks());
        assert_eq!(h.verify("pw", &phc).await, Ok(true));
    }

    #[tokio::test]
    async fn a_block_unused_for_the_idle_time_is_released_and_allocated_again_when_needed() {
        let clock = Arc::new(Clock::default());
        clock.set_ms(Some(1_000_000));
        let h = Hasher::new(2, 0, Counter::default(), Counter::default(), clock.clone());
        assert_eq!(h.release_idle(), 0);
        let phc = h.hash("Correct-horse-9!").await.unwrap();
        assert_eq!(h.allocated_blocks(), 1);
        clock.advance_ms(IDLE_RELEASE_MS - 1);
        assert_eq!(h.release_idle(), 0);
        assert_eq!(h.allocated_blocks(), 1);
        // Used again: its idle time starts over.
        assert_eq!(h.verify("Correct-horse-9!", &phc).await, Ok(true));
        clock.advance_ms(IDLE_RELEASE_MS - 1);
        assert_eq!(h.release_idle(), 0);
        clock.advance_ms(1);
        assert_eq!(h.release_idle(), 1);
        assert_eq!(h.allocated_blocks(), 0);
        assert_eq!(h.release_idle(), 0);
        // The next hash allocates a new block, zeroed: results are the same.
        assert_eq!(h.verify("Correct-horse-9!", &phc).await, Ok(true));
        assert_eq!(h.verify("wrong", &phc).await, Ok(false));
        assert_eq!(h.allocated_blocks(), 1);
    }

    #[test]
    fn each_block_is_released_after_its_own_idle_time() {
        let clock = Arc::new(Clock::default());
        clock.set_ms(Some(1_000_000));
        let h = Hasher::new(2, 0, Counter::default(), Counter::default(), clock.clone());
        // Two workers took a new block each, and gave them back 20 s apart.
        assert!(h.take_block().is_none() && h.take_block().is_none());
        assert_eq!(h.allocated_blocks(), 2);
        h.put_block(new_block());
        clock.advance_ms(20_000);
        h.put_block(new_block());
        clock.advance_ms(IDLE_RELEASE_MS - 20_000);
        assert_eq!(h.release_idle(), 1);
        assert_eq!(h.allocated_blocks(), 1);
        // The one left is the most recently used, and is the one the next hash takes.
        let b = h.take_block().unwrap();
        assert_eq!(b.len(), block_count());
        h.put_block(b);
        clock.advance_ms(IDLE_RELEASE_MS - 1);
        assert_eq!(h.release_idle(), 0);
        clock.advance_ms(1);
        assert_eq!(h.release_idle(), 1);
        assert_eq!(h.allocated_blocks(), 0);
    }

    #[test]
    fn a_block_is_its_own_mapping_with_only_the_used_part_touched() {
        let b = new_block();
        assert_eq!(b.len(), block_count());
        // Above glibc's largest dynamic mmap threshold (32 MiB): malloc maps it whatever was
        // freed before, so freeing it unmaps it.
        assert!(b.capacity() * Block::SIZE > 32 << 20);
        assert!(b.iter().all(|block| block.as_ref().iter().all(|w| *w == 0)));
    }
}
