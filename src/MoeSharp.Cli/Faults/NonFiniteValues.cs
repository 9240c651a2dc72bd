namespace MoeSharp.Cli.Faults;

/// <summary>Finds a NaN or an infinity in float32 values, for errors that name where it is.</summary>
internal static class NonFiniteValues
{
    /// <summary>The index of the first NaN or infinity in <paramref name="values"/>, or -1 when every value is
    /// finite.</summary>
    public static int IndexOfFirst(ReadOnlySpan<float> values) =>
        // NaN compares as outside every range, so one vectorized search finds it beside ±∞.
        values.IndexOfAnyExceptInRange(float.MinValue, float.MaxValue);
}
