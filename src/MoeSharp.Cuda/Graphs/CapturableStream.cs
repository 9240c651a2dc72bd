using System.Reflection;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace MoeSharp.Cuda.Graphs;

/// <summary>
/// Puts an ILGPU CUDA accelerator's work on a stream of its own, so it can be captured into a CUDA graph: ILGPU 1.5.3
/// queues everything on <c>Accelerator.DefaultStream</c>, which on CUDA is the legacy default stream, and that stream
/// cannot be captured. Every stream kernel, copy and memset reads <c>DefaultStream</c> when it is queued, so replacing
/// it moves all of them; <see cref="Dispose"/> waits for the stream and puts the legacy stream back.
/// </summary>
/// <remarks>
/// The property's setter is not public: it is set by reflection, as <c>PrimaryContextAdoption</c> sets the context.
/// Use it where one thread owns the accelerator (one rank), around the whole run that captures and replays, so that
/// the eager steps it is compared with run on the same stream.
/// </remarks>
internal sealed class CapturableStream : IDisposable
{
    private static readonly PropertyInfo DefaultStreamProperty =
        typeof(Accelerator).GetProperty(
            nameof(Accelerator.DefaultStream),
            BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic
        ) ?? throw new MissingMemberException(nameof(Accelerator), nameof(Accelerator.DefaultStream));

    private readonly Accelerator _accelerator;
    private readonly AcceleratorStream _previous;
    private readonly CudaStream _stream;
    private bool _disposed;

    private CapturableStream(Accelerator accelerator, AcceleratorStream previous, CudaStream stream)
    {
        _accelerator = accelerator;
        _previous = previous;
        _stream = stream;
    }

    /// <summary>The stream's native handle (<c>cudaStream_t</c>).</summary>
    public IntPtr Handle => _stream.StreamPtr;

    /// <summary>The accelerator whose work now goes to the stream.</summary>
    public Accelerator Accelerator => _accelerator;

    /// <summary>Moves <paramref name="accelerator"/>'s default stream to a new stream.</summary>
    /// <exception cref="NotSupportedException">The accelerator is not a CUDA accelerator.</exception>
    public static CapturableStream Use(Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        if (accelerator is not CudaAccelerator)
        {
            throw new NotSupportedException(
                $"CUDA graphs need a CUDA accelerator; {accelerator.Name} is {accelerator.AcceleratorType}"
            );
        }
        AcceleratorStream previous = accelerator.DefaultStream;
        previous.Synchronize();
        var stream = (CudaStream)accelerator.CreateStream();
        DefaultStreamProperty.SetValue(accelerator, stream);
        return new CapturableStream(accelerator, previous, stream);
    }

    /// <summary>Waits for the stream's work and gives the accelerator its default stream back.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _stream.Synchronize();
        DefaultStreamProperty.SetValue(_accelerator, _previous);
        _stream.Dispose();
    }
}
