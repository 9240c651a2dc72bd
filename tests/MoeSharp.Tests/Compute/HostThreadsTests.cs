using MoeSharp.Collectives;
using MoeSharp.Compute;

namespace MoeSharp.Tests.Compute;

[Collection("HostThreads.Count")] // tests that set the process-wide budget never run at the same time
public sealed class HostThreadsTests
{
    [Fact]
    public void Ranks_of_an_in_process_world_share_the_budget_without_exceeding_it()
    {
        int before = HostThreads.Count;
        HostThreads.Count = 10;
        try
        {
            int[] shares = InProcessWorld.Run(4, _ => HostThreads.Current);
            // 10 threads over 4 ranks: 3, 3, 2, 2: together the budget, no more.
            Assert.Equal([3, 3, 2, 2], shares);
            int[] many = InProcessWorld.Run(12, _ => HostThreads.Current);
            Assert.All(many, s => Assert.Equal(1, s));
            Assert.Equal(10, HostThreads.Current);
        }
        finally
        {
            HostThreads.Count = before;
        }
    }

    [Fact]
    public void A_budget_below_one_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => HostThreads.Count = 0);
    }
}
