using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Soak;

/// <summary>
/// One random soak problem: tiny sizes so that a thousand of them take seconds, every option of the dispatcher varied.
/// </summary>
internal static class SoakConfiguration
{
    /// <summary>
    /// Draws a problem for a world of <paramref name="world"/> ranks (a random one up to <paramref name="maxWorld"/>
    /// when null).
    /// </summary>
    public static DispatchCase Draw(Random random, int maxWorld, int? world = null)
    {
        int w = world ?? random.Next(1, maxWorld + 1);
        int[] sps = Enumerable.Range(1, w).Where(s => w % s == 0).ToArray();
        int sp = sps[random.Next(sps.Length)];
        int experts = w * random.Next(1, 4);
        int topK = random.Next(1, experts + 1);
        int tokens = random.Next(0, 24);
        int dim = random.Next(1, 9);
        int[] alignments = [1, 1, 2, 4, 16];
        var config = new TokenDispatcherConfig(experts, topK)
        {
            ScoreBeforeExperts = random.Next(2) == 0,
            Sharding = random.Next(2) == 0 ? SpShardingPolicy.PadToMultiple : SpShardingPolicy.Balanced,
            Layout = random.Next(2) == 0 ? SequenceLayout.Replicated : SequenceLayout.Sharded,
            ExpertAlignment = alignments[random.Next(alignments.Length)],
            CheckReplicatedInputs = random.Next(2) == 0,
        };
        DType rowType = random.Next(2) == 0 ? DType.Float32 : DType.BFloat16;
        var groups = new GroupInputs[w / sp];
        for (int g = 0; g < groups.Length; g++)
            groups[g] = RandomInputs.Create(random, tokens, dim, experts, topK).WithRowType(rowType);
        return new DispatchCase(w, sp, config, groups);
    }

    /// <summary>One line naming the problem, for the report of a failed run.</summary>
    public static string Describe(DispatchCase c) =>
        $"world {c.World}, SP {c.Sp}, T {c.Groups[0].X.Rows}, D {c.Groups[0].X.RowLength}, E {c.Config.NumExperts}, K {c.Config.TopK}, "
        + $"{c.Config.Sharding}, {c.Config.Layout}, align {c.Config.ExpertAlignment}, score {(c.Config.ScoreBeforeExperts ? "before" : "after")}, "
        + $"{c.Groups[0].X.DType}";
}
