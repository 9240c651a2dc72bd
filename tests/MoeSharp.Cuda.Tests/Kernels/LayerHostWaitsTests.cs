using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// A layer step on the device reads from it once (docs/cuda.md, "Host waits in a layer step"): the dispatch's count
/// read. The router's expert counts and the load balancer's running total stay on the device until they are read
/// after the step. Forward, backward and AdamW queue everything else. On ILGPU's CPU accelerator uploads are
/// synchronous copies, which a GPU stages on the stream instead, so those are left out of the count.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class LayerHostWaitsTests(CpuBackendFixture fixture)
{
    private sealed class RecordingDrain : IStreamDrain
    {
        public List<string> Operations { get; } = [];

        public void Drain(string operation) => Operations.Add(operation);
    }

    [Fact]
    public void LayerStep_ReadsTheDeviceOnce()
    {
        IlgpuBackend backend = fixture.Backend;
        var args = new MoeLayerArgs(dim: 16, hidden: 24, numExperts: 8, topK: 2) { LoadBalancing = true };
        var layer = new MoeLayer(
            args,
            new LocalTokenDispatcher(new TokenDispatcherConfig(8, 2), backend.Kernels),
            null,
            backend.Layer
        );
        var r = new Random(5);
        Tensor Random(params int[] shape) =>
            Tensor.FromArray(
                Enumerable
                    .Range(0, shape.Aggregate(1, (a, b) => a * b))
                    .Select(_ => (float)(r.NextDouble() - 0.5))
                    .ToArray(),
                shape
            );
        MoeLayerCheckpoint.Load(
            layer,
            [
                new(MoeLayerCheckpoint.GateWeight, Random(8, 16)),
                new(MoeLayerCheckpoint.ExpertsW1, Random(8, 24, 16)),
                new(MoeLayerCheckpoint.ExpertsW2, Random(8, 16, 24)),
                new(MoeLayerCheckpoint.ExpertsW3, Random(8, 24, 16)),
            ]
        );
        var optimizer = new AdamW(layer.Parameters, kernels: backend.Layer);
        Tensor x = backend.Kernels.Device.ToDevice(Random(40, 16)),
            grad = backend.Kernels.Device.ToDevice(Random(40, 16));
        var drain = new RecordingDrain();
        var stepWaits = new List<string[]>();
        var loads = new List<long[]>();
        backend.Allocator.HostWaits.Guard(drain);
        try
        {
            for (int step = 0; step < 2; step++)
            {
                drain.Operations.Clear();
                Tensor y = layer.Forward(x);
                Tensor gradX = layer.Backward(grad).GradX;
                optimizer.Step();
                stepWaits.Add(drain.Operations.Where(o => o != "copy from host").ToArray());
                // After the step (as moe train does): the balancer's total comes to the host here.
                loads.Add(layer.UpdateExpertBias(1e-3f));
                backend.Layer.Allocator.Return(y);
                backend.Layer.Allocator.Return(gradX);
            }
        }
        finally
        {
            backend.Allocator.HostWaits.Guard(null);
        }
        Assert.All(stepWaits, waits => Assert.Equal(["read of the routing counts"], waits));
        // The counts the update used are those of the step's ids, counted on the host.
        long[] expected = new long[8];
        foreach (long id in layer.LastRouting!.ExpertIds.ToHost().AsSpan<long>())
            expected[id]++;
        Assert.Equal(expected, loads[^1]);
        Assert.Equal(40 * 2, loads[0].Sum());
    }
}
