using MoeSharp.Compute;

namespace MoeSharp.Tests.Compute;

public sealed class HostScoreFunctionsTests
{
    [Theory]
    [InlineData(16)] // whole vectors only
    [InlineData(21)] // vectors and a scalar tail
    [InlineData(5)] // a tail only
    public void Softmax_is_bitwise_the_row_by_row_scalar_formula(int columns)
    {
        // Enough rows to be split over threads.
        float[] logits = Logits(20_000 * columns);
        var scores = new float[logits.Length];
        HostScoreFunctions.Softmax(logits, scores, columns);
        for (int t = 0; t < logits.Length / columns; t++)
        {
            ReadOnlySpan<float> z = logits.AsSpan(t * columns, columns);
            float max = float.NegativeInfinity;
            foreach (float v in z)
                max = Math.Max(max, v);
            var s = new float[columns];
            float sum = 0f;
            for (int e = 0; e < columns; e++)
            {
                s[e] = MathF.Exp(z[e] - max);
                sum += s[e];
            }
            for (int e = 0; e < columns; e++)
                AssertSameBits(s[e] / sum, scores[(t * columns) + e], t, e);
        }
    }

    [Fact]
    public void Softmax_in_place_matches_softmax_into_another_span()
    {
        float[] logits = Logits(16 * 1000);
        var scores = new float[logits.Length];
        HostScoreFunctions.Softmax(logits, scores, 16);
        HostScoreFunctions.Softmax(logits, logits, 16);
        Assert.Equal(scores, logits);
    }

    [Fact]
    public void Sigmoid_is_bitwise_the_scalar_formula()
    {
        float[] logits = Logits(300_007);
        var scores = new float[logits.Length];
        HostScoreFunctions.Sigmoid(logits, scores);
        for (int i = 0; i < logits.Length; i++)
            AssertSameBits(1f / (1f + MathF.Exp(-logits[i])), scores[i], i, 0);
    }

    private static float[] Logits(int n)
    {
        var random = new Random(5);
        var logits = new float[n];
        for (int i = 0; i < n; i++)
            logits[i] = i % 101 == 0 ? (float)(random.NextDouble() * 300 - 150) : (float)(random.NextDouble() * 16 - 8);
        return logits;
    }

    private static void AssertSameBits(float expected, float actual, int row, int column)
    {
        if (BitConverter.SingleToUInt32Bits(expected) != BitConverter.SingleToUInt32Bits(actual))
            Assert.Fail($"[{row}, {column}]: {actual:R}, the scalar formula {expected:R}");
    }
}
