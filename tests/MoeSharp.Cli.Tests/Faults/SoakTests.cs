using MoeSharp.Cli.Commands;
using MoeSharp.Cli.Soak;
using MoeSharp.Collectives;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// The soak's fault injection: every kind fires, and the world ends naming the culprit, within the timeout + 2 s.
/// </summary>
public class SoakTests
{
    private static DispatchCase Problem(int seed) => SoakConfiguration.Draw(new Random(seed), maxWorld: 4, world: 3);

    [Theory]
    [InlineData(0)] // Throw
    [InlineData(1)] // DelayPastTimeout
    [InlineData(2)] // ReturnEarly
    [InlineData(3)] // CorruptCounts
    [InlineData(4)] // MismatchedShapes
    public void EveryFaultKind_EndsTheWorld_NamingTheCulprit(int kindIndex)
    {
        var kind = (FaultKind)kindIndex;
        int fired = 0;
        for (int seed = 0; seed < 6; seed++)
        {
            string? problem = InProcessSoak.RunOne(
                Problem(seed),
                new FaultPlan(1, seed % 4, kind),
                SoakDevices.Host,
                TimeSpan.FromSeconds(2),
                out bool didFire
            );
            Assert.True(problem is null, problem);
            if (didFire)
                fired++;
        }
        Assert.True(fired > 0, $"{kind} never found an eligible collective");
    }

    [Fact]
    public void FaultFreeRuns_AreBitwiseEqualToTheReference()
    {
        var random = new Random(7);
        for (int i = 0; i < 30; i++)
        {
            DispatchCase problem = SoakConfiguration.Draw(random, maxWorld: 4);
            Assert.Null(
                InProcessSoak.RunOne(problem, null, SoakDevices.Host, TimeSpan.FromSeconds(30), out bool fired)
            );
            Assert.False(fired);
        }
    }

    [Fact]
    public void PlannedFaults_AlwaysFire_AtACallTheRankMakes()
    {
        var random = new Random(11);
        var kinds = new HashSet<FaultKind>();
        for (int i = 0; i < 40; i++)
        {
            DispatchCase problem = SoakConfiguration.Draw(random, maxWorld: 4, world: random.Next(2, 5));
            Assert.Null(
                InProcessSoak.RunOne(problem, null, SoakDevices.Host, TimeSpan.FromSeconds(30), out _, out var calls)
            );
            FaultPlan? plan = FaultPlanner.Plan(random, calls);
            Assert.NotNull(plan);
            Assert.Contains(calls[plan.Rank], c => c.Index == plan.Collective && c.Takes(plan.Kind));
            string? problemText = InProcessSoak.RunOne(
                problem,
                plan,
                SoakDevices.Host,
                TimeSpan.FromSeconds(1),
                out bool fired
            );
            Assert.True(fired, $"{plan} did not fire");
            Assert.True(problemText is null, problemText);
            kinds.Add(plan.Kind);
        }
        Assert.Equal(Enum.GetValues<FaultKind>().Length, kinds.Count);
    }

    [Fact]
    public void Planner_DrawsOnlyKindsACallCanTake()
    {
        EligibleCall[] onlyBarriers = [new(0, false, false), new(3, false, false)];
        var random = new Random(3);
        for (int i = 0; i < 50; i++)
        {
            FaultPlan plan = FaultPlanner.Plan(random, [onlyBarriers, []])!;
            Assert.Equal(0, plan.Rank);
            Assert.Contains(plan.Collective, new[] { 0, 3 });
            Assert.DoesNotContain(plan.Kind, new[] { FaultKind.CorruptCounts, FaultKind.MismatchedShapes });
        }
        Assert.Null(
            FaultPlanner.Plan(
                random,
                [
                    [],
                    [],
                ]
            )
        );
    }

    [Fact]
    public void IlgpuCpuBackends_AreKeptAcrossRuns_AndStayRightAfterAFault()
    {
        using var devices = new SoakDevices(ComputeOptions.Parse("ilgpu-cpu", null));
        MoeSharp.Cuda.IlgpuBackend[] Backends() =>
            InProcessWorld.Run(
                2,
                g =>
                {
                    using MoeSharp.Cuda.DeviceRank? rank = devices.CreateRank(g);
                    return rank!.Backend;
                }
            );
        MoeSharp.Cuda.IlgpuBackend[] first = Backends();
        var random = new Random(5);
        for (int i = 0; i < 6; i++)
        {
            DispatchCase problem = SoakConfiguration.Draw(random, maxWorld: 2, world: 2);
            Assert.Null(InProcessSoak.RunOne(problem, null, devices, TimeSpan.FromSeconds(30), out _, out var calls));
            FaultPlan plan = FaultPlanner.Plan(random, calls)!;
            string? faulted = InProcessSoak.RunOne(problem, plan, devices, TimeSpan.FromSeconds(1), out bool fired);
            Assert.True(fired && faulted is null, $"{plan}: {faulted}");
        }
        Assert.Equal(first, Backends());
        DispatchCase last = SoakConfiguration.Draw(random, maxWorld: 2, world: 2);
        Assert.Null(InProcessSoak.RunOne(last, null, devices, TimeSpan.FromSeconds(30), out _));
    }
}
