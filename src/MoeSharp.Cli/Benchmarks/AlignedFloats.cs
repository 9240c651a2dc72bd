using System.Runtime.InteropServices;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// Floats in native memory whose first element lies on a 64-byte boundary, as PyTorch's CPU allocator places every
/// tensor (the GEMM benchmark's peer), so both sides of a comparison read operands laid out alike.
/// </summary>
/// <remarks>
/// A managed array's first element lies wherever the GC put the array, 8-byte aligned at best. HostGemm reads a
/// row-major B of at most 512 columns where it lies (its private grid), 128 bytes a step: off a 64-byte boundary every
/// such read spans three cache lines instead of two. On the GPU machine's Xeon, 2 threads, the lone 256 × 512 × 512
/// product read its A·B 6–11 % and its Aᵀ·B 10–14 % slower with B 16, 32 or 48 bytes past the boundary than on it
/// (bench/RESULTS-cpu.md, stop 43).
/// </remarks>
internal sealed unsafe class AlignedFloats : IDisposable
{
    private float* _first;

    /// <summary>Allocates <paramref name="length"/> floats with unspecified contents.</summary>
    public AlignedFloats(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        _first = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(1L, (long)length * sizeof(float)), 64);
    }

    /// <summary>Floats held.</summary>
    public int Length { get; }

    /// <summary>The floats.</summary>
    public Span<float> Span =>
        _first == null ? throw new ObjectDisposedException(nameof(AlignedFloats)) : new(_first, Length);

    /// <inheritdoc />
    public void Dispose()
    {
        NativeMemory.AlignedFree(_first);
        _first = null;
    }
}
