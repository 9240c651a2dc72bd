using MoeSharp.Cuda.Native;

namespace MoeSharp.Cuda.Graphs;

/// <summary>
/// A step captured once into a CUDA graph (<c>cudaStreamBeginCapture</c> … <c>cudaStreamEndCapture</c>,
/// <c>cudaGraphInstantiate</c>) and replayed with one <c>cudaGraphLaunch</c>: the kernels, copies and memsets the step
/// queued, with the same buffers and sizes every time. The step must not wait on the host while it is captured (a
/// capacity-mode dispatch at EP = 1 without host validation does not: see docs/capacity.md), and the tensors it
/// reads and writes must stay allocated while the graph is replayed.
/// </summary>
internal sealed class CudaGraphStep : IDisposable
{
    /// <summary>cudaStreamCaptureModeRelaxed: allocations by other code during the capture stay legal.</summary>
    private const int RelaxedCapture = 2;

    private readonly nint _graph;
    private readonly nint _exec;
    private readonly CapturableStream _stream;
    private bool _disposed;

    private CudaGraphStep(nint graph, nint exec, CapturableStream stream)
    {
        _graph = graph;
        _exec = exec;
        _stream = stream;
    }

    /// <summary>Captures what <paramref name="step"/> queues on <paramref name="stream"/> (nothing runs yet).</summary>
    /// <exception cref="CudaException">The capture failed, e.g. the step waited on the host.</exception>
    public static CudaGraphStep Capture(CapturableStream stream, Action step)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(step);
        CudaRuntime runtime = CudaRuntime.Shared;
        stream.Accelerator.Bind();
        runtime.StreamBeginCapture(stream.Handle, RelaxedCapture);
        nint graph;
        try
        {
            step();
        }
        catch
        {
            // End the capture so the stream is usable again; the partial graph is discarded.
            try
            {
                runtime.GraphDestroy(runtime.StreamEndCapture(stream.Handle));
            }
            catch (CudaException) { }
            throw;
        }
        graph = runtime.StreamEndCapture(stream.Handle);
        try
        {
            return new CudaGraphStep(graph, runtime.GraphInstantiate(graph), stream);
        }
        catch
        {
            runtime.GraphDestroy(graph);
            throw;
        }
    }

    /// <summary>Queues one run of the captured step on the stream.</summary>
    public void Replay()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CudaRuntime.Shared.GraphLaunch(_exec, _stream.Handle);
    }

    /// <summary>Waits for the stream and frees the graph.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        CudaRuntime.Shared.StreamSynchronize(_stream.Handle);
        CudaRuntime.Shared.GraphExecDestroy(_exec);
        CudaRuntime.Shared.GraphDestroy(_graph);
    }
}
