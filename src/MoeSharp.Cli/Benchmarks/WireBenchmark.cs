using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// <c>moe bench --wire fp8</c> (dispatch): a native-row dispatcher and an FP8 one on the same ranks and inputs, in
/// rotating order, every phase timed to a barrier (so every time is the slowest rank's). The bytes are what each
/// forward exchange handed to the all-to-all-v (<see cref="TokenDispatcher.LastDispatchBytesSent"/>: element counts ×
/// the element size of the tensor actually sent), summed over the ranks.
/// </summary>
internal static class WireBenchmark
{
    /// <summary>One format's figures: bytes over all ranks of one dispatch, median seconds.</summary>
    public sealed record Figures(long Bytes, double DispatchSeconds, double CombineSeconds);

    /// <summary>
    /// Both formats, and the FP8 output's error against the native one: per token, ‖y_fp8 − y‖₂ / ‖y‖₂ of the combine
    /// output (scaled-identity experts), its largest and its mean over every rank's tokens.
    /// </summary>
    public sealed record Result(Figures Native, Figures Fp8, double MaxTokenError, double MeanTokenError);

    /// <summary>Runs this rank's part; every rank gets the same result.</summary>
    public static Result RunRank(
        IProcessGroup world,
        Commands.BenchShape shape,
        bool scoreBefore,
        int warmup,
        int repeats,
        int seed
    )
    {
        using var groups = ParallelGroups.Create(world, 1);
        var random = new Random(seed * 7919 + world.Rank);
        GroupInputs inputs = RandomInputs
            .Create(random, shape.Tokens, shape.Dim, shape.Experts, shape.TopK)
            .WithRowType(shape.RowType);
        var config = new TokenDispatcherConfig(shape.Experts, shape.TopK) { ScoreBeforeExperts = scoreBefore };
        TokenDispatcher[] dispatchers =
        [
            new AllToAllTokenDispatcher(config, groups),
            new AllToAllTokenDispatcher(config with { WireFormat = RowWireFormat.Fp8E4M3 }, groups),
        ];
        var dispatchTimes = new[] { new List<double>(), new List<double>() };
        var combineTimes = new[] { new List<double>(), new List<double>() };
        var bytes = new long[2];
        var outputs = new Tensor?[2];
        int firstExpert = world.Rank * (shape.Experts / world.Size);
        for (int i = 0; i < warmup + repeats; i++)
        {
            for (int j = 0; j < 2; j++)
            {
                int which = (i + j) % 2;
                TokenDispatcher dispatcher = dispatchers[which];
                world.Barrier();
                long t0 = Stopwatch.GetTimestamp();
                using DispatchResult d = dispatcher.Dispatch(inputs.X, inputs.Scores, inputs.Ids);
                world.Barrier();
                long t1 = Stopwatch.GetTimestamp();
                bytes[which] = dispatcher.LastDispatchBytesSent;
                Tensor y = ScaledIdentityExperts.Apply(d.RoutedTokens, d.TokensPerLocalExpert.AsSpan(), firstExpert);
                world.Barrier();
                long t2 = Stopwatch.GetTimestamp();
                Tensor output = dispatcher.Combine(y, d.Metadata, inputs.X);
                world.Barrier();
                long t3 = Stopwatch.GetTimestamp();
                if (i >= warmup)
                {
                    dispatchTimes[which].Add(Stopwatch.GetElapsedTime(t0, t1).TotalSeconds);
                    combineTimes[which].Add(Stopwatch.GetElapsedTime(t2, t3).TotalSeconds);
                }
                if (outputs[which] is { } previous)
                    dispatcher.Allocator.Return(previous);
                outputs[which] = output;
            }
        }
        world.AllReduceSum(bytes.AsSpan());
        var (sum, max, count) = TokenErrors(outputs[0]!, outputs[1]!);
        var totals = new[] { sum, count };
        world.AllReduceSum(totals.AsSpan());
        var maxes = new double[world.Size];
        world.AllGather<double>([max], maxes);
        Figures Of(int which) =>
            new(
                bytes[which],
                DispatchBenchmark.Median(dispatchTimes[which]),
                DispatchBenchmark.Median(combineTimes[which])
            );
        return new Result(Of(0), Of(1), maxes.Max(), totals[1] == 0 ? 0 : totals[0] / totals[1]);
    }

    /// <summary>Per-token relative L2 errors of <paramref name="actual"/> against <paramref name="expected"/>: their
    /// sum, largest and count (tokens whose expected row is zero are skipped).</summary>
    internal static (double Sum, double Max, double Count) TokenErrors(Tensor expected, Tensor actual)
    {
        float[] e = expected.ToFloat32().AsSpan<float>().ToArray(),
            a = actual.ToFloat32().AsSpan<float>().ToArray();
        int d = expected.RowLength;
        double sum = 0,
            max = 0,
            count = 0;
        for (int t = 0; t < expected.Rows; t++)
        {
            double diff = 0,
                norm = 0;
            for (int j = t * d; j < (t + 1) * d; j++)
            {
                double delta = (double)a[j] - e[j];
                diff += delta * delta;
                norm += (double)e[j] * e[j];
            }
            if (norm == 0)
                continue;
            double relative = Math.Sqrt(diff / norm);
            sum += relative;
            max = Math.Max(max, relative);
            count++;
        }
        return (sum, max, count);
    }
}
