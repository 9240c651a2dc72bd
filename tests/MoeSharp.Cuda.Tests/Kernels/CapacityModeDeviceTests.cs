using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Testing;
using MoeSharp.Verification;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>Four CPU-accelerator backends, one per in-process rank, compiled once for the capacity tests.</summary>
public sealed class CapacityBackendsFixture : IDisposable
{
    /// <summary>Backend of rank r.</summary>
    public IlgpuBackend[] Backends { get; } = Enumerable.Range(0, 4).Select(_ => IlgpuBackend.CreateCpu()).ToArray();

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (IlgpuBackend backend in Backends)
            backend.Dispose();
    }
}

/// <summary>
/// Capacity mode on the ILGPU kernels (CPU accelerator): bitwise the normal mode on every golden file and under
/// adversarial routing with the overflow round counted, and a capacity-mode step at EP = 1 that makes no host read at
/// all (the blocking waits are recorded through the backend's host-wait guard).
/// </summary>
public class CapacityModeDeviceTests(CapacityBackendsFixture fixture) : IClassFixture<CapacityBackendsFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    public static TheoryData<string> DispatchFiles() => DispatchEndToEndTests.DispatchFiles();

    [Theory]
    [MemberData(nameof(DispatchFiles))]
    public void GoldenFile_CapacityMode_IsBitwiseTheNormalMode(string fileName)
    {
        DispatchCase problem = GoldenDispatchReplay.ReadCase(SafetensorsFile.Read(GoldenFiles.PathOf(fileName)));
        if (problem.World > fixture.Backends.Length)
            return; // The 8-rank file runs on the host (MoeSharp.Tests); four backends keep this suite quick.
        foreach (DispatchCapacity capacity in new[] { DispatchCapacity.Factor(1.0), DispatchCapacity.RowsPerRank(1) })
        {
            foreach (CapacityOutcome outcome in Compare(problem, capacity))
                Assert.True(outcome.Mismatch is null, $"{fileName}, {capacity}: {outcome.Mismatch}");
        }
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(2, 1, 1)]
    [InlineData(4, 1, 2)]
    [InlineData(4, 2, 2)]
    public void OneRankReceivingEverything_OverflowsAndStaysBitwise(int world, int sp, int topK)
    {
        int experts = 2 * world;
        DispatchCase problem = AdversarialRouting.Case(world, sp, 41, 16, experts, topK, experts - topK);
        problem = problem with { Config = problem.Config with { ExpertAlignment = 4 } };
        CapacityOutcome[] outcomes = Compare(problem, DispatchCapacity.Factor(1.0));
        foreach (CapacityOutcome outcome in outcomes)
            Assert.True(outcome.Mismatch is null, outcome.Mismatch);
        Assert.All(outcomes, o => Assert.Equal(world > 1 ? 1 : 0, o.OverflowRounds));
    }

    [Fact]
    public void CapacityStep_AtEp1_MakesNoHostRead_WhileTheNormalModeReadsTheCounts()
    {
        IlgpuBackend backend = fixture.Backends[0];
        GroupInputs g = AdversarialRouting.Case(1, 1, 128, 64, 8, 2, 0).Groups[0];
        var normal = new TokenDispatcherConfig(8, 2);
        var captured = normal with { Capacity = DispatchCapacity.Factor(1.0) with { ValidateOnHost = false } };
        var validated = normal with { Capacity = DispatchCapacity.Factor(1.0) };

        Assert.Empty(RecordStep(backend, captured, g));
        Assert.Equal(["copy to host"], RecordStep(backend, validated, g));
        Assert.Contains("read of the routing counts", RecordStep(backend, normal, g));
    }

    [Fact]
    public void SpRanksThatDisagreeOnT_ThrowOnEveryRank()
    {
        GroupInputs six = AdversarialRouting.Case(1, 1, 6, 8, 4, 1, 0).Groups[0];
        GroupInputs eight = AdversarialRouting.Case(1, 1, 8, 8, 4, 1, 0).Groups[0];
        var config = new TokenDispatcherConfig(4, 1) { Capacity = DispatchCapacity.RowsPerRank(64) };
        var error = Assert.ThrowsAny<Exception>(() =>
            InProcessWorld.Run(
                2,
                world =>
                {
                    using DeviceRank rank = DeviceRank.CreateCpu(world, fixture.Backends[world.Rank]);
                    using var groups = ParallelGroups.Create(rank.World, 2);
                    GroupInputs g = world.Rank == 0 ? six : eight;
                    var dispatcher = new AllToAllTokenDispatcher(config, groups, rank.Backend.Kernels);
                    using DispatchResult d = dispatcher.Dispatch(
                        rank.Upload(g.X),
                        rank.Upload(g.Scores),
                        rank.Upload(g.Ids)
                    );
                    return 0;
                },
                Timeout
            )
        );
        Assert.Contains("disagree on the token count T", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void DeviceScaledExperts_OnTheCapacityBuffer_AreTheHostExperts()
    {
        IlgpuBackend backend = fixture.Backends[0];
        GroupInputs g = AdversarialRouting.Case(1, 1, 40, 8, 8, 2, 3).Groups[0];
        var config = new TokenDispatcherConfig(8, 2) { Capacity = DispatchCapacity.Factor(1), ExpertAlignment = 4 };
        var dispatcher = new LocalTokenDispatcher(config, backend.Kernels);
        using DispatchResult d = dispatcher.Dispatch(
            backend.Kernels.Device.ToDevice(g.X),
            backend.Kernels.Device.ToDevice(g.Scores),
            backend.Kernels.Device.ToDevice(g.Ids)
        );
        Tensor device = new MoeSharp.Cuda.Kernels.DeviceScaledExperts(backend.Allocator).Apply(
            d.RoutedTokens,
            d.DeviceTokensPerLocalExpert!,
            5
        );
        Tensor host = ScaledIdentityExperts.ApplyToPrefix(
            d.RoutedTokens.ToHost(),
            d.DeviceTokensPerLocalExpert!.ToHost().AsSpan<int>(),
            5
        );
        Assert.True(host.AsBytes().SequenceEqual(device.ToHost().AsBytes()));
        backend.Allocator.Return(device);
    }

    /// <summary>
    /// Two dispatch → experts → combine steps (the experts an identity on the device, so nothing of theirs reads the
    /// host); the blocking waits of the second, warm one, as the backend's host-wait guard saw them.
    /// </summary>
    private static List<string> RecordStep(IlgpuBackend backend, TokenDispatcherConfig config, GroupInputs g)
    {
        var dispatcher = new LocalTokenDispatcher(config, backend.Kernels);
        Tensor x = backend.Kernels.Device.ToDevice(g.X),
            scores = backend.Kernels.Device.ToDevice(g.Scores),
            ids = backend.Kernels.Device.ToDevice(g.Ids);
        var drain = new RecordingDrain();
        for (int step = 0; step < 2; step++)
        {
            if (step == 1)
                backend.Allocator.HostWaits.Guard(drain);
            try
            {
                using DispatchResult dispatched = dispatcher.Dispatch(x, scores, ids);
                Tensor output = dispatcher.Combine(dispatched.RoutedTokens, dispatched.Metadata, x);
                dispatcher.Allocator.Return(output);
            }
            finally
            {
                backend.Allocator.HostWaits.Guard(null);
            }
        }
        return drain.Operations;
    }

    private CapacityOutcome[] Compare(DispatchCase problem, DispatchCapacity capacity) =>
        InProcessWorld.Run(
            problem.World,
            world =>
            {
                using DeviceRank rank = DeviceRank.CreateCpu(world, fixture.Backends[world.Rank]);
                return CapacityComparison.CompareRank(world, problem, capacity, rank);
            },
            Timeout
        );

    private sealed class RecordingDrain : IStreamDrain
    {
        public List<string> Operations { get; } = [];

        public void Drain(string operation) => Operations.Add(operation);
    }
}
