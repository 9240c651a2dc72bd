using MoeSharp.Cli.Faults;

namespace MoeSharp.Tests.Faults;

public sealed class NonFiniteValuesTests
{
    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Finds_the_first_nan_or_infinity_wherever_it_lies(float bad)
    {
        // Long enough for the vectorized search's whole vectors and its tail.
        foreach (int at in new[] { 0, 7, 16, 37, 99 })
        {
            float[] values = Enumerable.Range(0, 100).Select(i => i - 50.5f).ToArray();
            values[at] = bad;
            if (at < 99)
                values[99] = float.NaN;
            Assert.Equal(at, NonFiniteValues.IndexOfFirst(values));
        }
    }

    [Fact]
    public void Every_finite_value_passes_the_extremes_and_subnormals_included()
    {
        float[] values =
        [
            float.MaxValue,
            float.MinValue,
            float.Epsilon,
            -float.Epsilon,
            0f,
            -0f,
            1e-40f,
            BitConverter.Int32BitsToSingle(0x7F7FFFFF),
        ];
        Assert.Equal(-1, NonFiniteValues.IndexOfFirst(values));
        Assert.Equal(-1, NonFiniteValues.IndexOfFirst([]));
    }
}
