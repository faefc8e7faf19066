//! Memory hints of the events pass: prefetches and huge pages. None of them changes
//! a result, only when memory is read.

/// An empty vector with room for `capacity` items, in memory the kernel is asked to
/// back with 2 MB pages (Linux, where transparent huge pages are allowed on request):
/// the pass reads these tables at random, and with 4 KB pages nearly every read of a
/// large table also misses the TLB. The advice must come before the memory is
/// touched.
pub(super) fn with_huge_pages<T>(capacity: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(capacity);
    #[cfg(target_os = "linux")]
    // SAFETY: advice only, over memory this vector owns; the kernel ignores it
    // where it does not apply.
    unsafe {
        // madvise wants a page-aligned start; the advice covers whole pages.
        const PAGE: usize = 4096;
        let start = v.as_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let end = start + capacity * std::mem::size_of::<T>();
        if end > aligned {
            libc::madvise(
                aligned as *mut libc::c_void,
                end - aligned,
                libc::MADV_HUGEPAGE,
            );
        }
    }
    v
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
