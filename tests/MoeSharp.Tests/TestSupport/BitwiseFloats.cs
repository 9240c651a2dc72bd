namespace MoeSharp.Testing;

/// <summary>Bit-for-bit comparison of float results, for the products whose contract is bitwise.</summary>
internal static class BitwiseFloats
{
    /// <summary>
    /// Fails at the first element whose bits differ (so -0 and +0 differ, and NaNs by payload), naming it with
    /// <paramref name="where"/> of its index.
    /// </summary>
    public static void AssertSame(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, Func<int, string> where)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{where(i)}: {actual[i]} is not the expected {expected[i]}");
        }
    }
}
