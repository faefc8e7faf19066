//! The 2 MB blocks the slot tables of the events pass grow by. Safe code: the
//! mapping is memmap2's, and the blocks are plain data by bytemuck's checks.

use bytemuck::Pod;

/// Bytes of a `Pages` block.
pub(super) const BLOCK: usize = 2 << 20;

/// `BLOCK / size_of::<T>()` zeroed values in their own fresh mapping: a table that
/// grows a block at a time this way never moves, so it copies nothing and faults no
/// page in twice when it grows, where a growing `Vec` faults in every page it moves
/// to. The blocks are left in 4 KB pages, not advised into huge pages: on a VM whose
/// host takes back the guest's free memory (virtio-balloon free page reporting
/// reports free 2 MB blocks), a fresh 2 MB page is mostly one the host must fault in
/// again, while 4 KB pages mostly come from memory the host still backs (the
/// measurements are in docs/PERFORMANCE.md, session 13).
pub(super) struct Pages<T: Pod> {
    map: memmap2::MmapMut,
    of: std::marker::PhantomData<T>,
}

impl<T: Pod> Pages<T> {
    pub(super) const LEN: usize = BLOCK / std::mem::size_of::<T>();

    /// A fresh anonymous mapping (page-aligned, so aligned for any plain type), all
    /// zeros. Aborts like an allocation failure when out of memory.
    pub(super) fn new() -> Self {
        let map = memmap2::MmapMut::map_anon(BLOCK).unwrap_or_else(|_| {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(BLOCK, 4096).expect("4 KB is a power of two"),
            )
        });
        Pages {
            map,
            of: std::marker::PhantomData,
        }
    }
}

impl<T: Pod> std::ops::Deref for Pages<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        bytemuck::cast_slice(&self.map)
    }
}

impl<T: Pod> std::ops::DerefMut for Pages<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        bytemuck::cast_slice_mut(&mut self.map)
    }
}
