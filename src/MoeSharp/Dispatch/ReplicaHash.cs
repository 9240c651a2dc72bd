using System.IO.Hashing;
using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The replicated-input check of <see cref="TokenDispatcherConfig.CheckReplicatedInputs"/>: each rank hashes its
/// routing (ids and scores, XxHash3 over their bytes), the world gathers the hashes, and every rank compares each SP
/// group's copies from the same data, so all of them throw the same error or none does.
/// </summary>
internal static class ReplicaHash
{
    /// <summary>The 64-bit hash of the routing's bytes (device tensors are copied to the host first).</summary>
    public static long Of(Tensor topScores, Tensor expertIds)
    {
        var hash = new XxHash3();
        hash.Append(expertIds.ToHost().AsBytes());
        hash.Append(topScores.ToHost().AsBytes());
        return unchecked((long)hash.GetCurrentHashAsUInt64());
    }

    /// <summary>
    /// Gathers every rank's hash over <paramref name="world"/> and throws when an SP group's copies differ.
    /// </summary>
    /// <param name="world">The EP world (SP groups of <paramref name="spSize"/> consecutive ranks).</param>
    /// <param name="spSize">Ranks of an SP group.</param>
    /// <param name="mine">This rank's hash.</param>
    /// <exception cref="ArgumentException">Two SP ranks of a group hold different routing; names both (world
    /// ranks).</exception>
    public static void CheckAgreement(IProcessGroup world, int spSize, long mine)
    {
        var all = new long[world.Size];
        world.AllGather<long>([mine], all);
        for (int r = 0; r < all.Length; r++)
        {
            int first = r - r % spSize;
            if (all[r] == all[first])
                continue;
            throw new ArgumentException(
                $"the replicated copies of SP group {r / spSize} disagree: rank {world.WorldRanks[r]}'s expert ids or scores differ "
                    + $"from rank {world.WorldRanks[first]}'s (hashes {all[r]:x16} and {all[first]:x16}); every SP rank must pass the same routing "
                    + $"(rank {world.WorldRanks[world.Rank]})",
                "expertIds"
            );
        }
    }
}
