using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;

namespace MoeSharp.Verification;

/// <summary>
/// How a layer run is spread over in-process ranks: <see cref="World"/> ranks (the EP group), SP groups of
/// <see cref="Sp"/> consecutive ranks (one data-parallel group each), and the dispatcher's options.
/// World 1 with the defaults uses the local dispatcher.
/// </summary>
public sealed record LayerLayout(int World, int Sp, SequenceLayout Layout, SpShardingPolicy Sharding, int Alignment = 1)
{
    /// <summary>One rank, local dispatcher.</summary>
    public static LayerLayout Single { get; } = new(1, 1, SequenceLayout.Replicated, SpShardingPolicy.PadToMultiple);

    /// <summary>Data-parallel groups: World / Sp.</summary>
    public int Groups => World / Sp;

    /// <summary>
    /// Runs <paramref name="runRank"/> once per rank of this layout: on the calling thread with no groups for a single
    /// replicated host rank, else on an in-process world, each rank with its device (from <paramref name="compute"/>)
    /// and, unless it is one replicated rank, its EP/SP groups. Returns the ranks' results in rank order.
    /// </summary>
    public T[] RunRanks<T>(ComputeOptions? compute, TimeSpan? timeout, Func<ParallelGroups?, DeviceRank?, T> runRank)
    {
        bool oneReplicatedRank = World == 1 && Layout == SequenceLayout.Replicated;
        if (oneReplicatedRank && compute is not { OnDevice: true })
            return [runRank(null, null)];
        return InProcessWorld.Run(
            World,
            world =>
            {
                using DeviceRank? device = compute?.CreateRank(world);
                using ParallelGroups? groups = oneReplicatedRank
                    ? null
                    : ParallelGroups.Create(device?.World ?? world, Sp);
                return runRank(groups, device);
            },
            timeout
        );
    }

    /// <summary>A short description, e.g. <c>world 4 sp 2 sharded balanced</c>.</summary>
    public override string ToString() =>
        $"world {World} sp {Sp} {Layout.ToString().ToLowerInvariant()} {(Sharding == SpShardingPolicy.Balanced ? "balanced" : "pad")}"
        + (Alignment > 1 ? $" align {Alignment}" : "");

    /// <summary>
    /// The layouts the golden replay checks against one rank: world 2 and 4, SP 1 and 2, both layouts and policies (E
    /// must divide the world).
    /// </summary>
    public static IEnumerable<LayerLayout> Variants(int experts)
    {
        foreach (int world in new[] { 2, 4 })
        {
            if (experts % world != 0)
                continue;
            foreach (int sp in new[] { 1, 2 })
            {
                foreach (SequenceLayout layout in new[] { SequenceLayout.Replicated, SequenceLayout.Sharded })
                {
                    foreach (
                        SpShardingPolicy policy in new[] { SpShardingPolicy.PadToMultiple, SpShardingPolicy.Balanced }
                    )
                    {
                        if (sp == 1 && policy == SpShardingPolicy.Balanced)
                            continue; // same as pad with one SP rank
                        yield return new LayerLayout(world, sp, layout, policy);
                    }
                }
            }
        }
    }
}
