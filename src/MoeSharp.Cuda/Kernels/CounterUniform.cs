namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// A counter-based uniform generator for training batches: element <c>i</c> of the stream of (seed, step) is a pure
/// function of the three, so a device fills a batch in place, one thread per element, and the host computes the very
/// same bits. Element <c>i</c> is SplitMix64's <c>i</c>-th output from the stream's key (Steele, Lea and Flood 2014:
/// a Weyl sequence with step 0x9E3779B97F4A7C15 through a bijective 64-bit finalizer); its top 24 bits become a float
/// in [-1, 1) on a 2^-23 grid.
/// </summary>
/// <remarks>
/// Bitwise the same on the host, ILGPU's CPU accelerator and CUDA: integer arithmetic, an exact int→float conversion
/// (24 bits), a power-of-two scale and a subtraction whose exact result is representable (a multiple of 2^-23 below 1
/// in magnitude), so a fused multiply-add cannot change it either.
/// </remarks>
internal static class CounterUniform
{
    private const ulong Gamma = 0x9E3779B97F4A7C15UL;

    /// <summary>The key of stream (<paramref name="seed"/>, <paramref name="step"/>): one per pair.</summary>
    public static ulong StreamKey(int seed, int step) => Mix(((ulong)(uint)seed << 32) | (uint)step);

    /// <summary>Element <paramref name="index"/> (≥ 0) of the stream <paramref name="key"/>: in [-1, 1).</summary>
    public static float At(ulong key, long index)
    {
        ulong z = Mix(key + ((ulong)index + 1) * Gamma);
        return (int)(z >> 40) * (1f / 8388608f) - 1f;
    }

    /// <summary>Elements <c>[first, first + values.Length)</c> of the stream <paramref name="key"/>.</summary>
    public static void Fill(ulong key, long first, Span<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = At(key, first + i);
    }

    /// <summary>SplitMix64's finalizer (Stafford's Mix13): a bijection on 64-bit words.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
