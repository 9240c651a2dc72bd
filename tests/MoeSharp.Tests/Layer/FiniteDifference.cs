namespace MoeSharp.Tests.Layer;

/// <summary>Float64 central finite differences (test support).</summary>
internal static class FiniteDifference
{
    /// <summary>
    /// d loss / d values[i] for every i by <c>(L(v + h) − L(v − h)) / 2h</c>, perturbing
    /// <paramref name="values"/> in place and restoring it.
    /// </summary>
    public static double[] Gradient(Func<double> loss, double[] values, double step = 1e-6)
    {
        var grad = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            double saved = values[i];
            values[i] = saved + step;
            double plus = loss();
            values[i] = saved - step;
            double minus = loss();
            values[i] = saved;
            grad[i] = (plus - minus) / (2 * step);
        }
        return grad;
    }

    /// <summary>‖actual − expected‖ / ‖expected‖ (or ‖actual‖ when expected is zero).</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0,
            norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            diff += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        return norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm);
    }
}
