using MoeSharp.Compute;

namespace MoeSharp.Tests.Compute;

public sealed class HostWorkerTeamTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(100, 8)]
    [InlineData(3, 16)]
    public void Every_task_runs_exactly_once(int count, int threads)
    {
        for (int round = 0; round < 20; round++)
        {
            var runs = new int[count];
            HostWorkerTeam.For(count, threads, i => Interlocked.Increment(ref runs[i]));
            Assert.All(runs, r => Assert.Equal(1, r));
        }
    }

    [Fact]
    public void A_pass_inside_a_pass_runs_on_the_thread_pool_and_completes()
    {
        var runs = new int[6 * 5];
        HostWorkerTeam.For(
            6,
            4,
            outer => HostWorkerTeam.For(5, 4, inner => Interlocked.Increment(ref runs[(outer * 5) + inner]))
        );
        Assert.All(runs, r => Assert.Equal(1, r));
    }

    [Fact]
    public void Callers_on_several_threads_at_once_each_get_all_their_tasks_run()
    {
        var runs = new int[8, 50];
        Parallel.For(
            0,
            8,
            new ParallelOptions { MaxDegreeOfParallelism = 8 },
            caller =>
            {
                for (int round = 0; round < 10; round++)
                    HostWorkerTeam.For(5, 3, i => Interlocked.Increment(ref runs[caller, (round * 5) + i]));
            }
        );
        foreach (int r in runs)
            Assert.Equal(1, r);
    }

    [Fact]
    public void A_task_that_throws_surfaces_after_the_other_tasks_ran_and_the_team_stays_usable()
    {
        var runs = new int[40];
        var error = Assert.Throws<InvalidOperationException>(() =>
            HostWorkerTeam.For(
                40,
                4,
                i =>
                {
                    Interlocked.Increment(ref runs[i]);
                    if (i == 13)
                        throw new InvalidOperationException("task 13");
                }
            )
        );
        Assert.Equal("task 13", error.Message);
        Assert.All(runs, r => Assert.Equal(1, r));
        var after = new int[10];
        HostWorkerTeam.For(10, 4, i => Interlocked.Increment(ref after[i]));
        Assert.All(after, r => Assert.Equal(1, r));
    }

    [Fact]
    public void A_pass_asked_for_while_the_team_is_busy_keeps_the_same_contract()
    {
        // The inner passes find the team busy with the outer one and run on the thread pool: every task still runs,
        // and the first failure surfaces as itself, not wrapped.
        var runs = new int[3, 40];
        var errors = new Exception?[3];
        HostWorkerTeam.For(
            3,
            3,
            outer =>
            {
                errors[outer] = Record.Exception(() =>
                    HostWorkerTeam.For(
                        40,
                        4,
                        i =>
                        {
                            Interlocked.Increment(ref runs[outer, i]);
                            if (i == 13)
                                throw new InvalidOperationException($"task 13 of pass {outer}");
                        }
                    )
                );
            }
        );
        for (int outer = 0; outer < 3; outer++)
        {
            var error = Assert.IsType<InvalidOperationException>(errors[outer]);
            Assert.Equal($"task 13 of pass {outer}", error.Message);
        }
        foreach (int r in runs)
            Assert.Equal(1, r);
    }
}
