using System.Runtime.InteropServices;

namespace MoeSharp.Compute;

/// <summary>
/// The packing buffers of <see cref="HostGemm"/>, kept per thread between calls: a fresh block per call costs page
/// faults (megabytes for B) that, on many threads at once, contend in the kernel and cost more than small products.
/// </summary>
/// <remarks>
/// Each thread has two slots (the caller's B panels, a task's A block). A slot already in use on this thread, or a
/// request above <see cref="MaxKeptBytes"/>, gets a block of its own that <see cref="Lease.Dispose"/> frees.
/// Contents are never read before they are written, so reuse cannot change a result.
/// </remarks>
internal static unsafe class GemmScratch
{
    /// <summary>The most a slot keeps between calls (larger requests are allocated and freed per call).</summary>
    public const long MaxKeptBytes = 16L << 20;

    /// <summary>The two kinds of buffer a thread may hold at once.</summary>
    public enum Slot
    {
        /// <summary>The packed B panels of one call (on the calling thread).</summary>
        PackedB,

        /// <summary>The packed A block of one task (on a worker).</summary>
        PackedA,
    }

    [ThreadStatic]
    private static SlotState? t_b;

    [ThreadStatic]
    private static SlotState? t_a;

    /// <summary>A 64-byte-aligned buffer of at least <paramref name="floats"/> floats until disposed.</summary>
    public static Lease Rent(Slot slot, long floats)
    {
        long bytes = Math.Max(64, floats * sizeof(float));
        SlotState state = slot == Slot.PackedB ? t_b ??= new SlotState() : t_a ??= new SlotState();
        if (state.InUse || bytes > MaxKeptBytes)
        {
            return new Lease((float*)NativeMemory.AlignedAlloc((nuint)bytes, 64), null);
        }
        if (state.Bytes < bytes)
        {
            NativeMemory.AlignedFree(state.Buffer);
            state.Buffer = null;
            state.Bytes = 0;
            state.Buffer = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
            state.Bytes = bytes;
        }
        state.InUse = true;
        return new Lease(state.Buffer, state);
    }

    /// <summary>A rented buffer: returned to its slot, or freed, on dispose.</summary>
    public readonly ref struct Lease
    {
        private readonly SlotState? _owner;

        internal Lease(float* pointer, SlotState? owner)
        {
            Pointer = pointer;
            _owner = owner;
        }

        /// <summary>The buffer.</summary>
        public float* Pointer { get; }

        /// <summary>Gives the buffer back to its slot or frees it.</summary>
        public void Dispose()
        {
            if (_owner is null)
                NativeMemory.AlignedFree(Pointer);
            else
                _owner.InUse = false;
        }
    }

    /// <summary>One thread's kept buffer for one slot.</summary>
    internal sealed class SlotState
    {
        public float* Buffer;
        public long Bytes;
        public bool InUse;

        // The thread is gone (its statics unreachable): nothing can use the buffer any more.
        ~SlotState() => NativeMemory.AlignedFree(Buffer);
    }
}
