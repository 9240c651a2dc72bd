namespace MoeSharp.Testing;

/// <summary>Random operands for the host GEMM tests.</summary>
internal static class RandomFloats
{
    /// <summary><paramref name="length"/> floats drawn uniformly from [-1, 1) by <paramref name="random"/>.</summary>
    public static float[] Uniform(Random random, int length) =>
        Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
}
