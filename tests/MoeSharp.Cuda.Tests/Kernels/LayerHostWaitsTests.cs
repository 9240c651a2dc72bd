using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// A layer step on the device reads from it twice (docs/cuda.md, "Host waits in a layer step"): the router's E expert
/// counts and the dispatch's count read. Forward, backward and AdamW queue everything else. On ILGPU's CPU accelerator
/// uploads are synchronous copies, which a GPU stages on the stream instead, so those are left out of the count.
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
    public void LayerStep_ReadsTheDeviceTwice()
    {
        IlgpuBackend backend = fixture.Backend;
        var args = new MoeLayerArgs(dim: 16, hidden: 24, numExperts: 8, topK: 2);
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
        backend.Allocator.HostWaits.Guard(drain);
        try
        {
            for (int step = 0; step < 2; step++)
            {
                drain.Operations.Clear();
                Tensor y = layer.Forward(x);
                Tensor gradX = layer.Backward(grad).GradX;
                optimizer.Step();
                backend.Layer.Allocator.Return(y);
                backend.Layer.Allocator.Return(gradX);
            }
        }
        finally
        {
            backend.Allocator.HostWaits.Guard(null);
        }
        Assert.Equal(
            ["copy to host", "read of the routing counts"],
            drain.Operations.Where(o => o != "copy from host")
        );
    }
}
