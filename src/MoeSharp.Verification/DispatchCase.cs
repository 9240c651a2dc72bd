using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// One dispatch problem over a world: W ranks in SP groups of <see cref="Sp"/>, each SP group (data-parallel
/// group g) with its own tokens, replicated on its ranks.
/// </summary>
/// <param name="World">Ranks (= EP size).</param>
/// <param name="Sp">SP group size; divides <paramref name="World"/>.</param>
/// <param name="Config">Dispatcher configuration.</param>
/// <param name="Groups">Inputs of each data-parallel group g = rank / sp.</param>
public sealed record DispatchCase(int World, int Sp, TokenDispatcherConfig Config, IReadOnlyList<GroupInputs> Groups)
{
    /// <summary>Data-parallel groups: World / Sp.</summary>
    public int GroupCount => World / Sp;
}

/// <summary>Tokens of one data-parallel group: <c>x [T, D]</c>, <c>scores [T, K]</c>, <c>ids [T, K]</c>.</summary>
public sealed record GroupInputs(Tensor X, Tensor Scores, Tensor Ids)
{
    /// <summary>
    /// These inputs with x in <paramref name="rowType"/> (float32 x rounded to bfloat16, or as it is).
    /// </summary>
    public GroupInputs WithRowType(DType rowType) =>
        rowType == DType.BFloat16 && X.DType != DType.BFloat16 ? this with { X = X.ToBFloat16() } : this;
}

/// <summary>What one rank saw and produced.</summary>
/// <param name="Rank">World rank.</param>
/// <param name="Shard">Its SP shard.</param>
/// <param name="Metadata">The dispatch's metadata (splits, rows per local expert).</param>
/// <param name="Routed"><c>[R, D]</c> routed rows.</param>
/// <param name="Output">Its combine output before the SP reduce.</param>
/// <param name="Final">
/// The group's result as this rank has it: the SP-reduced output (replicated) or this rank's shard (sharded).
/// </param>
public sealed record RankOutcome(
    int Rank,
    SequenceShard Shard,
    DispatchMetadata Metadata,
    Tensor Routed,
    Tensor Output,
    Tensor Final
)
{
    /// <summary>
    /// Rows per local expert (alignment padding included): the dispatch's <c>TokensPerLocalExpert</c>, or in capacity
    /// mode its device counts read back by the runner.
    /// </summary>
    public int[] RowsPerLocalExpert { get; init; } = [];
}
