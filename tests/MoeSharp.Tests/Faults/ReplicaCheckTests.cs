using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// The SP group's replicated routing copies are compared by hash when <see
/// cref="TokenDispatcherConfig.CheckReplicatedInputs"/> is on.
/// </summary>
public class ReplicaCheckTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static void DispatchWithOneDifferentCopy(
        bool check,
        int differingRank,
        Func<IProcessGroup, bool>? observe = null
    )
    {
        InProcessWorld.Run(
            4,
            world =>
            {
                using var groups = ParallelGroups.Create(world, 2);
                var config = new TokenDispatcherConfig(8, 2) { CheckReplicatedInputs = check };
                var dispatcher = new AllToAllTokenDispatcher(config, groups);
                int[] ids = [0, 1, 2, 3, 4, 5, 6, 7, 1, 3];
                if (world.Rank == differingRank)
                    ids[4] = 7; // a copy that routes token 2 elsewhere
                var x = Tensor.FromArray(new float[5 * 3], 5, 3);
                var scores = Tensor.FromArray(Enumerable.Repeat(0.5f, 10).ToArray(), 5, 2);
                DispatchResult d = dispatcher.Dispatch(x, scores, Tensor.FromArray(ids, 5, 2));
                dispatcher.Combine(d.RoutedTokens, d.Metadata, x);
                observe?.Invoke(world);
            },
            Timeout
        );
    }

    [Fact]
    public void DisagreeingCopies_FailOnEveryRank_NamingBothRanks()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            DispatchWithOneDifferentCopy(check: true, differingRank: 3)
        );
        Assert.All(
            error.RankErrors,
            e =>
            {
                var argument = Assert.IsType<ArgumentException>(e);
                Assert.Contains(
                    "SP group 1 disagree: rank 3's expert ids or scores differ from rank 2's",
                    argument.Message
                );
            }
        );
    }

    [Fact]
    public void DisagreeingCopies_PassUnchecked_WhenTheCheckIsOff()
    {
        // Without the check nothing notices: this is what the option is for.
        DispatchWithOneDifferentCopy(check: false, differingRank: 3);
    }

    [Fact]
    public void AgreeingCopies_Pass()
    {
        DispatchWithOneDifferentCopy(check: true, differingRank: -1);
    }
}
