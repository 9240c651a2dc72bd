using System.Numerics;

namespace MoeSharp.Collectives;

/// <summary>
/// The all-reduce sum of one rank: adds every member's values in rank order, <c>((v0 + v1) + v2) + …</c>,
/// so every rank (and every implementation that keeps this order) gets bitwise the same result.
/// </summary>
internal static class RankOrderSum
{
    /// <summary>Writes into <paramref name="sum"/> the rank-ordered sum of the members' values.</summary>
    public static unsafe void Sum<T>(CollectiveSlot slot, Span<T> sum)
        where T : unmanaged, INumber<T>
    {
        var members = slot.Members;
        new ReadOnlySpan<T>((void*)members[0]!.SendBase, sum.Length).CopyTo(sum);
        for (int p = 1; p < members.Length; p++)
        {
            Add(sum, new ReadOnlySpan<T>((void*)members[p]!.SendBase, sum.Length));
        }
    }

    /// <summary><c>accumulator[i] += addend[i]</c>; vector lanes add exactly like the scalar tail.</summary>
    private static void Add<T>(Span<T> accumulator, ReadOnlySpan<T> addend)
        where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            for (; i <= accumulator.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var a = new Vector<T>(accumulator[i..]);
                var b = new Vector<T>(addend[i..]);
                (a + b).CopyTo(accumulator[i..]);
            }
        }

        for (; i < accumulator.Length; i++)
            accumulator[i] += addend[i];
    }
}
