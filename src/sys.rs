//! The calls into the OS and the CPU that Rust cannot check: the library's only
//! `unsafe` code (every other module is `#![deny(unsafe_code)]` through lib.rs; the
//! binary's `main.rs` has one block of its own, setting an environment variable).
//! Each changes no result: a hint of when memory is read or written out, or a
//! faster way to the same bits (`byte_classes`, `map_file`).

#![allow(unsafe_code)]

/// Three classes of 64 bytes: where the quotes and backslashes are, a bit per byte
/// (the first byte the lowest), and whether any byte is of the other two classes.
pub struct ByteClasses {
    /// `"` or `\\`, a bit per byte.
    pub quote_or_backslash: u64,
    /// A control character: below 0x20.
    pub control: bool,
    /// Past ASCII: 0x80 or more.
    pub past_ascii: bool,
}

/// The classes of 64 bytes (`properties`' scan): four SSE2 vectors, two compares
/// each for the quotes and backslashes, and the other two classes gathered across
/// them (every x86_64 CPU has SSE2); a byte at a time elsewhere. Changes no result,
/// only how fast the marks are made (tested against a byte-at-a-time reading).
#[inline(always)]
pub fn byte_classes(block: &[u8; 64]) -> ByteClasses {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of every x86_64 target, and the intrinsics read only the
    // vectors made from `block`'s bytes (bytemuck: 64 bytes to four 16-byte vectors).
    unsafe {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
            _mm_setzero_si128,
        };
        let vectors: [__m128i; 4] = bytemuck::cast(*block);
        let (quote, backslash) = (_mm_set1_epi8(b'"' as i8), _mm_set1_epi8(b'\\' as i8));
        let last_control = _mm_set1_epi8(0x1F);
        let mut marks = 0u64;
        let (mut controls, mut any) = (_mm_setzero_si128(), _mm_setzero_si128());
        for (i, v) in vectors.into_iter().enumerate() {
            let special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
            marks |= u64::from(_mm_movemask_epi8(special) as u16) << (16 * i);
            // At most 0x1F exactly where min(byte, 0x1F) is the byte.
            controls = _mm_or_si128(controls, _mm_cmpeq_epi8(_mm_min_epu8(v, last_control), v));
            // A byte past ASCII has its top bit set: so has their OR.
            any = _mm_or_si128(any, v);
        }
        ByteClasses {
            quote_or_backslash: marks,
            control: _mm_movemask_epi8(controls) != 0,
            past_ascii: _mm_movemask_epi8(any) != 0,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    byte_classes_one_at_a_time(block)
}

/// `byte_classes` a byte at a time: other targets' way, and the tests' reference.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn byte_classes_one_at_a_time(block: &[u8; 64]) -> ByteClasses {
    let mut classes = ByteClasses {
        quote_or_backslash: 0,
        control: false,
        past_ascii: false,
    };
    for (i, &b) in block.iter().enumerate() {
        classes.quote_or_backslash |= u64::from(b == b'"' || b == b'\\') << i;
        classes.control |= b < 0x20;
        classes.past_ascii |= b >= 0x80;
    }
    classes
}

/// Asks the CPU to start loading `value`'s cache line; a hint, never a fault.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching reads nothing observable and `value` is a valid reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// An empty vector with room for `capacity` items, in memory the kernel is asked to
/// back with 2 MB pages (Linux, where transparent huge pages are allowed on request):
/// the events pass reads such tables at random, and with 4 KB pages nearly every
/// read of a large table also misses the TLB.
pub fn vec_in_huge_pages<T>(capacity: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(capacity);
    advise_huge_pages(v.as_ptr().cast(), capacity * std::mem::size_of::<T>());
    v
}

/// Advises the whole pages of `bytes` from `start` into huge pages (the advice must
/// come before the memory is touched to take effect).
fn advise_huge_pages(start: *const u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        // madvise wants a page-aligned start; the advice covers whole pages.
        const PAGE: usize = 4096;
        let start = start as usize;
        let aligned = start.next_multiple_of(PAGE);
        let end = start + bytes;
        if end > aligned {
            // SAFETY: advice only, over whole pages of an allocation the caller owns;
            // the kernel ignores it where it does not apply, and no memory changes.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}

/// A read-only map of `len` bytes of `file` from `offset`: its pages are read from the
/// page cache in place, with no copy into fresh memory (which costs a page fault and
/// zeroing per 4 KB the first time it is written). Unmapped when dropped. The file
/// must not change while mapped (a run's input files are complete before it starts,
/// and polars' own Parquet scan maps them too; README says to sync before a run): a
/// file cut short stops the process, one rewritten in place gives mixed bytes.
pub fn map_file(file: &std::fs::File, offset: u64, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only, and its bytes are only read as plain bytes (any
    // content is valid); memmap2's one condition, that no one changes or shrinks the
    // file while it is mapped, is the run's contract above.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)
    }
}

/// Asks the kernel to start writing a finished file to disk, without waiting (Linux).
/// Only a hint: nothing depends on it, and a failure is ignored.
pub fn start_writeback(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor, borrowed for the call; the call only
        // schedules writeback of the file's dirty pages.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Asks the kernel to start reading a file into the page cache, without waiting (so
/// that a file read later is read from memory). Only a hint: a failure is ignored.
pub fn read_ahead(path: &std::path::Path) {
    #[cfg(target_os = "linux")]
    if let Ok(file) = std::fs::File::open(path) {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor, borrowed for the call; the call only
        // schedules reads of the file into the page cache.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

/// Asks glibc's allocator to keep the memory a command frees for its next
/// allocations instead of handing it back to the kernel: blocks up to 32 MB come from
/// the heap (not a fresh `mmap` each), and up to 256 MB of free heap is kept. For the
/// commands that repeat one as_of's work per date (`backfill`, `backtest`): each date
/// allocates and frees the same frames, and on this VM memory touched for the first
/// time costs a page fault that may reach the host (docs/PERFORMANCE.md). Raises the
/// peak a little; changes no result. (Not for `run`: its pass, with its page buffers
/// kept per thread, gained nothing measurable, and its peak at 50M rose by up to
/// 0.35 GB.)
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's thresholds; both values are in the
    // ranges glibc documents, and a refusal (return 0) leaves the defaults.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_classes_are_those_of_each_byte_at_every_place() {
        for byte in 0..=255u8 {
            for at in 0..64 {
                for filler in [b'a', b' ', 0x1F, 0x20, b'"' ^ 1, b'\\' ^ 1, 0x80, 0xFF] {
                    let mut block = [filler; 64];
                    block[at] = byte;
                    let (fast, slow) = (byte_classes(&block), byte_classes_one_at_a_time(&block));
                    assert_eq!(
                        fast.quote_or_backslash, slow.quote_or_backslash,
                        "{byte:#x} at {at}"
                    );
                    assert_eq!(fast.control, slow.control, "{byte:#x} at {at}");
                    assert_eq!(fast.past_ascii, slow.past_ascii, "{byte:#x} at {at}");
                }
            }
        }
    }
}
