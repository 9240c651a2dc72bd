using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The backend's blocking host waits go through its <see cref="Memory.HostWaits"/> guard: with exchanges only queued on
/// the stream, the guard (a rank's NCCL group) is what turns a peer's failure into an exception instead of a hang.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class HostWaitsTests(CpuBackendFixture fixture)
{
    private sealed class RecordingDrain(Exception? failure = null) : IStreamDrain
    {
        public List<string> Operations { get; } = [];

        public void Drain(string operation)
        {
            Operations.Add(operation);
            if (failure is not null)
                throw failure;
        }
    }

    private IlgpuBackend Backend => fixture.Backend;

    [Fact]
    public void CopiesAndSynchronize_DrainThroughTheGuard_BeforeTheyBlock()
    {
        Tensor device = Backend.Kernels.Device.ToDevice(Tensor.FromArray(new[] { 1f, 2f, 3f }, 3));
        var drain = new RecordingDrain();
        Backend.Allocator.HostWaits.Guard(drain);
        try
        {
            Assert.Equal([1f, 2f, 3f], device.ToHost().AsSpan<float>().ToArray());
            Backend.Kernels.Device.Synchronize();
            device.DeviceBuffer!.CopyFromHost(Tensor.FromArray(new[] { 4f, 5f, 6f }, 3).AsBytes(), 0);
        }
        finally
        {
            Backend.Allocator.HostWaits.Guard(null);
            Backend.Allocator.Return(device);
        }
        Assert.Equal(["copy to host", "Synchronize", "copy from host"], drain.Operations);
    }

    [Fact]
    public void AFailingDrain_FailsTheRead_BeforeAnythingIsCopied()
    {
        Tensor device = Backend.Kernels.Device.ToDevice(Tensor.FromArray(new[] { 7f, 8f }, 2));
        Backend.Allocator.HostWaits.Guard(
            new RecordingDrain(new CollectiveException("rank 1: copy to host did not complete within 00:00:01"))
        );
        var destination = new byte[8];
        try
        {
            var ex = Assert.Throws<CollectiveException>(() => device.DeviceBuffer!.CopyToHost(0, destination));
            Assert.Contains("did not complete", ex.Message);
            Assert.All(destination, b => Assert.Equal(0, b));
        }
        finally
        {
            Backend.Allocator.HostWaits.Guard(null);
        }
        Assert.Equal([7f, 8f], device.ToHost().AsSpan<float>().ToArray());
        Backend.Allocator.Return(device);
    }
}
