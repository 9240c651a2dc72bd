using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The expert-parallel dispatcher (EP &gt; 1): counts are exchanged with an all-to-all, rows with an
/// all-to-all-v to the ranks that own their experts, and back again at combine (overlapped with the shared
/// experts); see <see cref="AllToAllExchange"/>. Works for EP = 1 too, through the same count exchange.
/// </summary>
/// <remarks>
/// The count exchange also carries each rank's view of the sequence (T and its shard's rows), so every rank
/// checks every SP group's agreement on T from the same data and all ranks throw the same error instead of
/// some hanging.
/// </remarks>
public sealed class AllToAllTokenDispatcher : TokenDispatcher
{
    /// <summary>Creates a dispatcher over <paramref name="groups"/> (EP = the world, SP groups of consecutive
    /// ranks).</summary>
    /// <exception cref="ArgumentException">E is not divisible by the EP size, or K &gt; E.</exception>
    /// <param name="config">What to route.</param>
    /// <param name="groups">EP and SP groups.</param>
    /// <param name="kernels">Compute backend; the host kernels when null.</param>
    /// <param name="pool">
    /// The host kernels' pool when <paramref name="kernels"/> is null (a new pool when this is null too); unused
    /// otherwise, since tensors then come from the kernels' device (<see cref="TokenDispatcher.Allocator"/>).
    /// </param>
    public AllToAllTokenDispatcher(
        TokenDispatcherConfig config,
        ParallelGroups groups,
        IMoeKernels? kernels = null,
        TensorPool? pool = null
    )
        : base(
            config,
            CheckGroups(groups).EpSize,
            groups.World.Rank,
            groups.SpSize,
            groups.SpRank,
            kernels,
            pool,
            k => new AllToAllExchange(groups, k, config)
        ) { }

    private static ParallelGroups CheckGroups(ParallelGroups groups) =>
        groups ?? throw new ArgumentNullException(nameof(groups));
}
