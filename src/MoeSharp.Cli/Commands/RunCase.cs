using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Commands;

/// <summary>One random problem of <c>moe run</c>.</summary>
internal sealed record RunCase(
    int World,
    int Sp,
    int Tokens,
    int Dim,
    int Experts,
    int TopK,
    SpShardingPolicy Sharding,
    SequenceLayout Layout,
    bool ScoreBefore,
    int Align,
    int Seed
)
{
    /// <summary>The dtype of the token rows (float32 unless <c>--dtype</c> says bfloat16).</summary>
    public DType RowType { get; init; } = DType.Float32;

    /// <summary>How dispatch moves the rows (<c>--wire</c>).</summary>
    public RowWireFormat Wire { get; init; } = RowWireFormat.Native;

    /// <summary>Whether the dispatchers collect traffic telemetry (<c>--traffic</c>).</summary>
    public bool Traffic { get; init; }

    /// <summary>Capacity mode (<c>--capacity-factor</c>, <c>--capacity-rows</c>), or null for the normal
    /// mode.</summary>
    public DispatchCapacity? Capacity { get; init; }

    /// <summary>
    /// The embedded default: the seed's case (7 tokens on 4 SP ranks, one pad row) and a large one
    /// (4096 tokens on 8 ranks, 64 experts, top-8).
    /// </summary>
    public static IReadOnlyList<RunCase> Defaults { get; } =
    [
        new(
            World: 4,
            Sp: 4,
            Tokens: 7,
            Dim: 3,
            Experts: 4,
            TopK: 1,
            SpShardingPolicy.PadToMultiple,
            SequenceLayout.Replicated,
            ScoreBefore: true,
            Align: 1,
            Seed: 1
        ),
        new(
            World: 8,
            Sp: 2,
            Tokens: 4096,
            Dim: 256,
            Experts: 64,
            TopK: 8,
            SpShardingPolicy.PadToMultiple,
            SequenceLayout.Replicated,
            ScoreBefore: false,
            Align: 1,
            Seed: 0
        ),
    ];

    /// <summary>The case the options describe, defaults filled in.</summary>
    public static RunCase From(RunSettings s) =>
        new(
            s.World ?? 4,
            s.Sp ?? 2,
            s.Tokens ?? 4096,
            s.Dim ?? 128,
            s.Experts ?? 64,
            s.TopK ?? 8,
            RunSettings.ParseSharding(s.Sharding),
            RunSettings.ParseLayout(s.Layout),
            RunSettings.ParseScoreBefore(s.Score),
            s.Align ?? 1,
            s.Seed ?? 0
        )
        {
            RowType = BenchShape.ParseRowType(s.DType) ?? DType.Float32,
            Wire = WireOption.Parse(s.Wire) ?? RowWireFormat.Native,
        };

    /// <summary>
    /// This case on an MPI job of <paramref name="jobSize"/> ranks: the job's size is the world; an explicit
    /// <c>--world</c> must agree with it.
    /// </summary>
    public RunCase ForWorld(int jobSize, int? requestedWorld)
    {
        if (requestedWorld is int w && w != jobSize)
        {
            throw new ArgumentException($"--world {w} but the MPI job has {jobSize} ranks (mpiexec -n)");
        }
        return this with { World = jobSize };
    }

    /// <summary>Checks the combination of options.</summary>
    /// <exception cref="ArgumentException">An option is inconsistent with another; the message names both.</exception>
    public void Validate()
    {
        if (World % Sp != 0)
            throw new ArgumentException($"--sp {Sp} must divide --world {World}");
        if (Experts % World != 0)
            throw new ArgumentException($"--experts {Experts} must be a multiple of --world {World}");
        if (TopK > Experts)
            throw new ArgumentException($"--top-k {TopK} must not exceed --experts {Experts}");
    }

    /// <summary>Checks the combination and draws the inputs.</summary>
    /// <exception cref="ArgumentException">An option is inconsistent with another; the message names both.</exception>
    public DispatchCase Build()
    {
        Validate();
        var config = new TokenDispatcherConfig(Experts, TopK)
        {
            ScoreBeforeExperts = ScoreBefore,
            Sharding = Sharding,
            Layout = Layout,
            ExpertAlignment = Align,
            CheckReplicatedInputs = true,
            CollectTraffic = Traffic,
            WireFormat = Wire,
            Capacity = Capacity,
        };
        var random = new Random(Seed);
        var groups = new GroupInputs[World / Sp];
        for (int g = 0; g < groups.Length; g++)
            groups[g] = RandomInputs.Create(random, Tokens, Dim, Experts, TopK).WithRowType(RowType);
        return new DispatchCase(World, Sp, config, groups);
    }

    /// <summary>One line naming the problem.</summary>
    public string Describe() =>
        $"world {World}, SP {Sp}, T = {Tokens}, D = {Dim}, E = {Experts}, K = {TopK}, sharding {Sharding}, layout {Layout}, "
        + $"score {(ScoreBefore ? "before" : "after")} experts, align {Align}, seed {Seed}"
        + (RowType == DType.Float32 ? "" : $", {RowType} rows")
        + (Wire == RowWireFormat.Native ? "" : ", FP8 rows on the wire")
        + (Capacity is null ? "" : $", {Capacity}");
}
