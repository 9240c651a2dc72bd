using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// <c>moe bench --layer --wire fp8</c>: how far FP8 rows on the wire move the MoE layer's output. Two host layers with
/// the same random weights (<see cref="LayerBenchmark.RandomWeights"/>) differ only in their dispatcher's
/// <see cref="TokenDispatcherConfig.WireFormat"/>; both run forward on the same inputs, whose values are bfloat16
/// values (rounded once), so the native layer's rows are exactly the rows a bfloat16 wire would carry and the router
/// sees the same input in both. Per token the error is ‖y_fp8 − y‖₂ / ‖y‖₂.
/// </summary>
internal static class Fp8LayerError
{
    /// <summary>One input kind's errors over every batch's tokens, and the largest element error relative to the
    /// largest output magnitude.</summary>
    public sealed record Row(string Inputs, int Tokens, double MaxTokenError, double MeanTokenError, double MaxElement);

    /// <summary>
    /// Runs <paramref name="batches"/> batches of each input kind: uniform in [-1, 1), and the same with 1 % of the
    /// columns (channel outliers, as LLM activations have) 32 times larger.
    /// </summary>
    public static IReadOnlyList<Row> Run(LayerBenchmark.Shape shape, int batches, int seed)
    {
        var args = new MoeLayerArgs(shape.Dim, shape.Hidden, shape.Experts, shape.TopK);
        var weights = LayerBenchmark.RandomWeights(args, seed);
        MoeLayer Create(RowWireFormat format)
        {
            var config = new TokenDispatcherConfig(args.NumExperts, args.TopK) { WireFormat = format };
            var layer = new MoeLayer(args, new LocalTokenDispatcher(config), null);
            MoeLayerCheckpoint.Load(layer, weights);
            return layer;
        }
        using MoeLayer native = Create(RowWireFormat.Native),
            fp8 = Create(RowWireFormat.Fp8E4M3);
        var rows = new List<Row>();
        foreach (bool outliers in new[] { false, true })
        {
            var random = new Random(seed + 1);
            double sum = 0,
                max = 0,
                count = 0,
                element = 0;
            for (int b = 0; b < batches; b++)
            {
                Tensor x = Inputs(random, shape, outliers);
                Tensor y = native.Forward(x),
                    y8 = fp8.Forward(x);
                var (s, m, c) = WireBenchmark.TokenErrors(y, y8);
                sum += s;
                max = Math.Max(max, m);
                count += c;
                element = Math.Max(element, MaxElementError(y, y8));
            }
            rows.Add(
                new Row(
                    outliers ? "uniform, 1 % outlier columns ×32" : "uniform [-1, 1)",
                    (int)count,
                    max,
                    count == 0 ? 0 : sum / count,
                    element
                )
            );
        }
        return rows;
    }

    /// <summary>Inputs rounded to bfloat16 values, optionally with outlier columns.</summary>
    private static Tensor Inputs(Random random, LayerBenchmark.Shape shape, bool outliers)
    {
        Tensor x = LayerBenchmark.RandomActivations(random, 1.0, shape.Tokens, shape.Dim);
        if (outliers)
        {
            Span<float> v = x.AsSpan<float>();
            int d = shape.Dim;
            for (int i = 0; i < v.Length; i++)
            {
                if ((i % d) % 100 == 37)
                    v[i] *= 32;
            }
        }
        return x.ToBFloat16().ToFloat32();
    }

    /// <summary>max |y8 − y| / max |y| over the batch.</summary>
    private static double MaxElementError(Tensor y, Tensor y8)
    {
        ReadOnlySpan<float> a = y.AsSpan<float>(),
            b = y8.AsSpan<float>();
        double diff = 0,
            scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs((double)b[i] - a[i]));
            scale = Math.Max(scale, Math.Abs((double)a[i]));
        }
        return scale == 0 ? 0 : diff / scale;
    }
}
