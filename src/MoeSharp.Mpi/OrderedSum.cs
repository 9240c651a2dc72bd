using System.Numerics;

namespace MoeSharp.Mpi;

/// <summary>
/// Sums <c>Size</c> gathered contributions in rank order, <c>((v0 + v1) + v2) + …</c>, element by element.
/// MPI_Allreduce's association order is implementation-defined (it depends on the algorithm, the process
/// count and the message size), so floating-point results could differ from the in-process group and
/// between runs; gathering and summing locally makes every rank and every implementation agree bitwise.
/// </summary>
internal static class OrderedSum
{
    /// <summary>
    /// Writes into <paramref name="result"/> the rank-ordered sum of the chunks of <paramref name="gathered"/>.
    /// </summary>
    public static void Sum<T>(ReadOnlySpan<T> gathered, Span<T> result)
        where T : unmanaged, INumber<T>
    {
        int n = result.Length;
        gathered[..n].CopyTo(result);
        for (int offset = n; offset < gathered.Length; offset += n)
        {
            // Vector lanes add independently, so this is the same per-element order as the scalar loop.
            ReadOnlySpan<T> next = gathered.Slice(offset, n);
            int i = 0;
            if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
            {
                for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
                    (new Vector<T>(result[i..]) + new Vector<T>(next[i..])).CopyTo(result[i..]);
            }
            for (; i < n; i++)
                result[i] += next[i];
        }
    }
}
