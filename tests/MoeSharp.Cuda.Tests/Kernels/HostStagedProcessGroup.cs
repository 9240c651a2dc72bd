using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// Test-only device collectives over a host process group: device tensors are copied to the host, exchanged
/// with the inner group's host collectives, and copied back. Lets the all-to-all dispatcher run with ILGPU
/// kernels on in-process ranks (NCCL's place on a real GPU).
/// </summary>
internal sealed class HostStagedProcessGroup(IProcessGroup inner) : IProcessGroup, IDeviceCollectives
{
    public int Rank => inner.Rank;

    public int Size => inner.Size;

    public IReadOnlyList<int> WorldRanks => inner.WorldRanks;

    public TimeSpan Timeout => inner.Timeout;

    public IProcessGroup Split(int color, int key) => new HostStagedProcessGroup(inner.Split(color, key));

    public void Barrier() => inner.Barrier();

    public void AllToAll<T>(ReadOnlySpan<T> send, Span<T> receive) where T : unmanaged => inner.AllToAll(send, receive);

    public void AllToAllV<T>(ReadOnlySpan<T> send, ReadOnlySpan<int> sendCounts, Span<T> receive, ReadOnlySpan<int> receiveCounts) where T : unmanaged
        => inner.AllToAllV(send, sendCounts, receive, receiveCounts);

    public CollectiveRequest AllToAllVAsync<T>(ReadOnlyMemory<T> send, int[] sendCounts, Memory<T> receive, int[] receiveCounts) where T : unmanaged
        => inner.AllToAllVAsync(send, sendCounts, receive, receiveCounts);

    public void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive) where T : unmanaged => inner.AllGather(send, receive);

    public void AllReduceSum(Span<float> values) => inner.AllReduceSum(values);

    public void AllReduceSum(Span<double> values) => inner.AllReduceSum(values);

    public void AllReduceSum(Span<long> values) => inner.AllReduceSum(values);

    public void Abort(Exception error) => inner.Abort(error);

    public void Dispose() => inner.Dispose();

    public void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts)
    {
        Tensor hostSend = send.ToHost();
        var hostReceive = Tensor.Uninitialized(DType.Float32, receive.ElementCount);
        inner.AllToAllV<float>(hostSend.AsSpan<float>(), sendCounts, hostReceive.AsSpan<float>(), receiveCounts);
        receive.DeviceBuffer!.CopyFromHost(hostReceive.AsBytes(), 0);
    }

    public CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts)
    {
        // Every rank calls this at the same point, so running the exchange now is a valid (if unoverlapped) schedule.
        AllToAllV(send, sendCounts, receive, receiveCounts);
        return CollectiveRequest.Completed;
    }

    public void AllReduceSum(Tensor values)
    {
        Tensor host = values.ToHost();
        inner.AllReduceSum(host.AsSpan<float>());
        values.DeviceBuffer!.CopyFromHost(host.AsBytes(), 0);
    }
}
