namespace MoeSharp.Dispatch;

/// <summary>
/// What a token dispatcher routes and how (torchtitan's dispatcher arguments plus MoeSharp's additions).
/// </summary>
public sealed record TokenDispatcherConfig
{
    /// <summary>
    /// Creates a configuration for <paramref name="numExperts"/> experts (E) and top-<paramref name="topK"/> routing
    /// (K).
    /// </summary>
    public TokenDispatcherConfig(int numExperts, int topK)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numExperts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        NumExperts = numExperts;
        TopK = topK;
    }

    /// <summary>E: experts in the whole EP group.</summary>
    public int NumExperts { get; }

    /// <summary>K: experts each token is routed to.</summary>
    public int TopK { get; }

    /// <summary>
    /// When true, each routed row is multiplied by its score (float32) at dispatch, before the experts;
    /// otherwise the expert outputs are multiplied at combine.
    /// </summary>
    public bool ScoreBeforeExperts { get; init; }

    /// <summary>How the token axis is split over the SP group.</summary>
    public SpShardingPolicy Sharding { get; init; } = SpShardingPolicy.PadToMultiple;

    /// <summary>Whether SP ranks hold every token or only their shard.</summary>
    public SequenceLayout Layout { get; init; } = SequenceLayout.Replicated;

    /// <summary>
    /// When true, a replicated-layout dispatch with SP &gt; 1 first checks that every SP rank holds the same routing: a
    /// 64-bit hash of each rank's ids and scores, gathered over the world (one small collective, plus a copy to the
    /// host for device tensors). Copies that disagree would otherwise route tokens twice or not at all, silently. Every
    /// rank throws the same <see cref="ArgumentException"/> naming the ranks that differ. On by default in debug
    /// builds.
    /// </summary>
    public bool CheckReplicatedInputs { get; init; } = DebugBuild;

    /// <summary>
    /// When true, every dispatch and combine fills a <see cref="Telemetry.TrafficReport"/>
    /// (<see cref="DispatchResult.Traffic"/>, <see cref="DispatchMetadata.Traffic"/>,
    /// <see cref="TokenDispatcher.LastTraffic"/>): rows and bytes from each rank to each expert, taken from the counts
    /// the plan already has, and the time each rank spent in the count exchange and the two row exchanges. It costs
    /// two clock reads per exchange and one small all-gather over the EP group per dispatch and per combine, so every
    /// rank of the group must set it alike. Off by default: then nothing is timed or gathered.
    /// </summary>
    public bool CollectTraffic { get; init; }

    /// <summary>
    /// How dispatch moves the <c>x</c> rows (<see cref="RowWireFormat"/>). With <see cref="RowWireFormat.Fp8E4M3"/>
    /// every routed row (after the score multiply when <see cref="ScoreBeforeExperts"/>) is quantised to FP8 with
    /// per-128-column power-of-two scales and dequantised to the dtype of <c>x</c> before the experts, also when no row
    /// leaves the rank (EP = 1), so the routed rows are the same bits for every EP size, SP size, sharding, layout and
    /// alignment. At D = 7168 a row moves 7392 bytes instead of 14336 in bfloat16 (0.516×). Combine and the backward
    /// passes are not quantised (the backward treats the rounding as the identity). Every rank of the EP group must
    /// set it alike. Default <see cref="RowWireFormat.Native"/>.
    /// </summary>
    public RowWireFormat WireFormat { get; init; } = RowWireFormat.Native;

    /// <summary>
    /// Capacity mode (<see cref="DispatchCapacity"/>): null (the default) for the normal mode, which reads the routing
    /// counts to the host once per dispatch and sizes every buffer exactly. In capacity mode the counts stay on the
    /// device, the first exchange round moves fixed slots, and an overflow round (counted in
    /// <see cref="DispatchResult.OverflowRounds"/>) moves what did not fit; the outputs are bitwise the normal mode's.
    /// The routed rows are then a fixed number of rows whose counts per expert are on the device
    /// (<see cref="DispatchResult.DeviceTokensPerLocalExpert"/>). Not combined with <see cref="CollectTraffic"/>.
    /// </summary>
    public DispatchCapacity? Capacity { get; init; }

#if DEBUG
    private const bool DebugBuild = true;
#else
    private const bool DebugBuild = false;
#endif

    private readonly int _expertAlignment = 1;

    /// <summary>
    /// A: each local expert's rows are padded with zero rows to a multiple of A (16 or 32 for fp8/mxfp8
    /// grouped GEMMs); 1 means no alignment. Pad rows are dropped on combine.
    /// </summary>
    public int ExpertAlignment
    {
        get => _expertAlignment;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(ExpertAlignment));
            _expertAlignment = value;
        }
    }
}
