//! Memory hints of the events pass: prefetches, huge pages for the member index, and
//! the 2 MB blocks the slot tables grow by. None of them changes a result, only when
//! memory is read and what its page faults cost.

/// An empty vector with room for `capacity` items, in memory the kernel is asked to
/// back with 2 MB pages (Linux, where transparent huge pages are allowed on request):
/// the pass reads these tables at random, and with 4 KB pages nearly every read of a
/// large table also misses the TLB.
pub(super) fn with_huge_pages<T>(capacity: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(capacity);
    advise_huge_pages(v.as_ptr().cast(), capacity * std::mem::size_of::<T>());
    v
}

/// Advises the whole pages of `bytes` from `start` into huge pages (the advice must
/// come before the memory is touched to take effect).
fn advise_huge_pages(start: *const u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: advice only, over memory the caller owns; the kernel ignores it where
    // it does not apply.
    unsafe {
        // madvise wants a page-aligned start; the advice covers whole pages.
        const PAGE: usize = 4096;
        let start = start as usize;
        let aligned = start.next_multiple_of(PAGE);
        let end = start + bytes;
        if end > aligned {
            libc::madvise(
                aligned as *mut libc::c_void,
                end - aligned,
                libc::MADV_HUGEPAGE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}

/// Asks the CPU to start loading `value`'s cache line; a hint, never a fault.
#[inline(always)]
pub(super) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching reads nothing observable and `value` is a valid reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Bytes of a `Pages` block.
pub(super) const BLOCK: usize = 2 << 20;

/// Plain data whose all-zero bytes are a valid value, so a fresh mapping is a slice
/// of them.
///
/// # Safety
/// Every field is an integer or an array of integers, with no padding.
pub(super) unsafe trait ZeroIsValid: Copy {}

/// `BLOCK / size_of::<T>()` zeroed values in their own fresh mapping: a table that
/// grows a block at a time this way never moves, so it copies nothing and faults no
/// page in twice when it grows, where a growing `Vec` faults in every page it moves
/// to. The blocks are left in 4 KB pages, not advised into huge pages: on a VM whose
/// host takes back the guest's free memory (virtio-balloon free page reporting
/// reports free 2 MB blocks), a fresh 2 MB page is mostly one the host must fault in
/// again, 1-6 ms each on the project's VM, while 4 KB pages mostly come from memory
/// the host still backs. Measured in the benchmark's order (after the scans), the
/// 50M job was 1.6-13% faster without the advice (median 8%, six comparisons) and
/// the 10M job a median 4% slower (more 4 KB faults); see docs/PERFORMANCE.md.
pub(super) struct Pages<T: ZeroIsValid> {
    start: std::ptr::NonNull<T>,
}

impl<T: ZeroIsValid> Pages<T> {
    pub(super) const LEN: usize = BLOCK / std::mem::size_of::<T>();

    pub(super) fn new() -> Self {
        let start = zeroed_block().cast::<T>();
        Pages {
            start: std::ptr::NonNull::new(start).unwrap_or_else(|| unreachable!("checked")),
        }
    }
}

/// A fresh mapping of `BLOCK` zero bytes, page-aligned (so aligned for any plain
/// type). Aborts like an allocation failure when out of memory.
#[cfg(unix)]
fn zeroed_block() -> *mut u8 {
    // SAFETY: a new anonymous private mapping, owned by no one else.
    unsafe {
        let raw = libc::mmap(
            std::ptr::null_mut(),
            BLOCK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if raw == libc::MAP_FAILED {
            std::alloc::handle_alloc_error(block_layout());
        }
        raw.cast()
    }
}

#[cfg(unix)]
fn free_block(start: *mut u8) {
    // SAFETY: `start` is a block mapped by `zeroed_block` and not unmapped since.
    unsafe {
        libc::munmap(start.cast(), BLOCK);
    }
}

/// The alignment of a block: a page's, as a mapping's start has.
const PAGE_ALIGN: usize = 4096;

fn block_layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(BLOCK, PAGE_ALIGN)
        .unwrap_or_else(|_| unreachable!("4 KB is a power of two"))
}

#[cfg(not(unix))]
fn zeroed_block() -> *mut u8 {
    // SAFETY: the layout has a non-zero size.
    let raw = unsafe { std::alloc::alloc_zeroed(block_layout()) };
    if raw.is_null() {
        std::alloc::handle_alloc_error(block_layout());
    }
    raw
}

#[cfg(not(unix))]
fn free_block(start: *mut u8) {
    // SAFETY: allocated by `zeroed_block` with this layout and not freed since.
    unsafe { std::alloc::dealloc(start, block_layout()) }
}

impl<T: ZeroIsValid> std::ops::Deref for Pages<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the block holds `LEN` zero-initialised `T`s (valid by `ZeroIsValid`),
        // aligned for `T` (page-aligned, and `ZeroIsValid` types are plain) and owned
        // here.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), Self::LEN) }
    }
}

impl<T: ZeroIsValid> std::ops::DerefMut for Pages<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the borrow of `self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), Self::LEN) }
    }
}

impl<T: ZeroIsValid> Drop for Pages<T> {
    fn drop(&mut self) {
        free_block(self.start.as_ptr().cast());
    }
}

// SAFETY: `Pages` owns its block outright, like a `Box<[T]>`.
unsafe impl<T: ZeroIsValid + Send> Send for Pages<T> {}
// SAFETY: shared access only reads, as with a `Box<[T]>`.
unsafe impl<T: ZeroIsValid + Sync> Sync for Pages<T> {}
