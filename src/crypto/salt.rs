//! Random salts: the envelope's 32 bytes and the part header's 16.
//!
//! Each thread draws a block of random bytes from aws-lc's CSPRNG and hands it out a
//! salt at a time. One `RAND_bytes` call costs about 410 ns whatever its length (its
//! fork and entropy checks; 16 and 48 bytes measure the same), a 4 KiB block about
//! 1 µs, so a new object's two salts cost ~0.85 µs drawn one by one and ~20 ns from the
//! block.
//!
//! That is sound for salts and for nothing secret: a salt is stored in the clear beside
//! what it salts, so only its uniqueness matters (a wrapped-mode salt must never repeat
//! under one wrapping key, FORMAT.md section 1). Every byte is handed out once and wiped
//! from the block as it goes. Keys never come from here (the local KMS draws its own
//! from aws-lc). sealgate does not fork, so no two processes share a block.

use std::cell::RefCell;

use super::CryptoError;

/// How many random bytes a thread draws at a time.
const BLOCK_BYTES: usize = 4096;

/// Salts longer than this are drawn directly: the block is for the format's short ones.
const MAX_POOLED: usize = 64;

struct Block {
    bytes: Box<[u8; BLOCK_BYTES]>,
    /// Bytes at the front already handed out (and wiped).
    used: usize,
}

impl Block {
    fn empty() -> Block {
        Block {
            bytes: Box::new([0; BLOCK_BYTES]),
            used: BLOCK_BYTES,
        }
    }

    fn take(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
        if BLOCK_BYTES - self.used < out.len() {
            aws_lc_rs::rand::fill(&mut self.bytes[..]).map_err(|_| CryptoError::Random)?;
            self.used = 0;
        }
        let taken = &mut self.bytes[self.used..self.used + out.len()];
        out.copy_from_slice(taken);
        taken.fill(0);
        self.used += out.len();
        Ok(())
    }
}

thread_local! {
    static BLOCK: RefCell<Block> = RefCell::new(Block::empty());
}

/// Fills `salt` with random bytes no other call is given.
pub(crate) fn fill_salt(salt: &mut [u8]) -> Result<(), CryptoError> {
    if salt.len() <= MAX_POOLED {
        // `try_with` fails only while the thread is being torn down.
        if let Ok(taken) = BLOCK.try_with(|b| b.borrow_mut().take(salt)) {
            return taken;
        }
    }
    aws_lc_rs::rand::fill(salt).map_err(|_| CryptoError::Random)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn salts_never_repeat_across_refills_and_are_wiped_from_the_block() {
        // 48 bytes per object (envelope and part salt), over three blocks' worth.
        let mut seen = HashSet::new();
        for i in 0..3 * BLOCK_BYTES / 48 {
            let mut envelope_salt = [0u8; 32];
            let mut part_salt = [0u8; 16];
            fill_salt(&mut envelope_salt).unwrap();
            fill_salt(&mut part_salt).unwrap();
            assert!(seen.insert(envelope_salt.to_vec()), "salt {i} repeated");
            assert!(seen.insert(part_salt.to_vec()), "part salt {i} repeated");
            // A block handed out without a refill would give zeros.
            assert_ne!(envelope_salt, [0u8; 32], "salt {i} is all zeros");
            assert_ne!(part_salt, [0u8; 16], "part salt {i} is all zeros");
        }
        BLOCK.with(|b| {
            let b = b.borrow();
            assert!(
                b.bytes[..b.used].iter().all(|&x| x == 0),
                "handed-out bytes stay in the block"
            );
            assert!(
                b.bytes[b.used..].iter().any(|&x| x != 0),
                "the block's unused bytes are random"
            );
        });
    }

    #[test]
    fn threads_draw_their_own_salts_and_long_ones_come_directly() {
        let draw = || {
            let mut s = [0u8; 32];
            fill_salt(&mut s).unwrap();
            s
        };
        let here = draw();
        let there = std::thread::spawn(draw).join().unwrap();
        assert_ne!(here, there);

        let mut long = [0u8; MAX_POOLED + 1];
        let before = BLOCK.with(|b| b.borrow().used);
        fill_salt(&mut long).unwrap();
        assert_ne!(long, [0u8; MAX_POOLED + 1]);
        assert_eq!(
            BLOCK.with(|b| b.borrow().used),
            before,
            "the block is untouched"
        );
    }
}
