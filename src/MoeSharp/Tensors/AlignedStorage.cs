using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MoeSharp.Tensors;

/// <summary>
/// Pinned host arrays for tensor storage, each with the index of its first element that lies on a 64-byte boundary,
/// where PyTorch's CPU allocator puts every tensor.
/// </summary>
/// <remarks>
/// A managed array's first element lies wherever the GC put the array (8-byte aligned on a 64-bit runtime). The host
/// GEMM's private grid reads a row-major B of at most 512 columns where it lies, 32 floats (128 bytes) a step: two
/// cache lines on a 64-byte boundary, three off it. On the GPU machine's Xeon the lone 256 × 512 × 512 product ran its
/// A·B at 0.89–0.94 and its Aᵀ·B at 0.86–0.90 of the aligned rate with B 16, 32 or 48 bytes past the boundary
/// (bench/RESULTS-cpu.md, stop 43). An array of the pinned object heap never moves, so the offset found once stays
/// right for the array's life; each array is one boundary's worth of elements longer than asked for (62 bytes at most).
/// </remarks>
internal static class AlignedStorage
{
    /// <summary>The boundary element 0 lies on, in bytes.</summary>
    public const int Alignment = 64;

    /// <summary>
    /// A pinned array of at least <paramref name="count"/> elements of <paramref name="dtype"/> past the returned
    /// offset, zeroed when <paramref name="zeroed"/>, and the index of its first element on a 64-byte boundary. Only
    /// arrays too long to take the extra elements start at 0 wherever they lie.
    /// </summary>
    public static (Array Array, int Offset) Allocate(DType dtype, int count, bool zeroed)
    {
        int size = dtype.SizeOf();
        int extra = Alignment / size - 1;
        if (count > Array.MaxLength - extra)
            extra = 0;
        Array array = New(dtype, count + extra, zeroed);
        return (array, extra == 0 ? 0 : OffsetOf(array, size));
    }

    /// <summary>
    /// The index of the first element of the pinned <paramref name="array"/> (elements of <paramref name="size"/>
    /// bytes) on a 64-byte boundary.
    /// </summary>
    private static unsafe int OffsetOf(Array array, int size)
    {
        nuint address = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (int)((Alignment - (address % Alignment)) % Alignment) / size;
    }

    private static Array New(DType dtype, int length, bool zeroed) =>
        dtype switch
        {
            DType.Float32 => New<float>(length, zeroed),
            DType.BFloat16 => New<BFloat16>(length, zeroed),
            DType.Int32 => New<int>(length, zeroed),
            DType.Int64 => New<long>(length, zeroed),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
        };

    private static T[] New<T>(int length, bool zeroed) =>
        zeroed ? GC.AllocateArray<T>(length, pinned: true) : GC.AllocateUninitializedArray<T>(length, pinned: true);
}
