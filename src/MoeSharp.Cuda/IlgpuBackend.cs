using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Cuda.Memory;

namespace MoeSharp.Cuda;

/// <summary>
/// One ILGPU device ready for MoE work: its context and accelerator, the dispatch kernels
/// (<see cref="Kernels"/>, an <c>IMoeKernels</c>), the router and expert kernels, and the caching allocator
/// they share. Disposing it frees all of them, in reverse order.
/// </summary>
public sealed class IlgpuBackend : IDisposable
{
    private readonly Context _context;
    private readonly Native.PrimaryContextAdoption? _primaryContext;
    private IlgpuLayerKernels? _layer;
    private IlgpuLayerKernels? _layerBFloat16;
    private bool _disposed;

    private IlgpuBackend(
        Context context,
        Accelerator accelerator,
        string deviceName,
        Native.PrimaryContextAdoption? primaryContext = null
    )
    {
        _context = context;
        _primaryContext = primaryContext;
        Accelerator = accelerator;
        try
        {
            // A layer step at Qwen3-like sizes hands back more than 8 GB of working tensors; beyond the cap every
            // return frees (waiting for the device) and the next step allocates again. A quarter of a GPU's memory
            // keeps them.
            long retained =
                accelerator.AcceleratorType == AcceleratorType.Cuda
                    ? Math.Max(8L << 30, accelerator.MemorySize / 4)
                    : 8L << 30;
            Allocator = new IlgpuTensorAllocator(accelerator, deviceName, retained);
            Kernels = new IlgpuMoeKernels(Allocator);
            Router = new IlgpuRouterKernels(Allocator);
            Experts = new IlgpuExpertKernels(Allocator);
        }
        catch
        {
            Kernels?.Dispose();
            Allocator?.Dispose();
            throw;
        }
    }

    /// <summary>The ILGPU accelerator.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The caching device allocator every tensor of this backend comes from.</summary>
    public IlgpuTensorAllocator Allocator { get; }

    /// <summary>The dispatch kernels: pass to <c>LocalTokenDispatcher</c> / <c>AllToAllTokenDispatcher</c>.</summary>
    public IlgpuMoeKernels Kernels { get; }

    /// <summary>Softmax, sigmoid and top-k over router scores.</summary>
    internal IlgpuRouterKernels Router { get; }

    /// <summary>The SwiGLU element-wise kernel.</summary>
    internal IlgpuExpertKernels Experts { get; }

    /// <summary>
    /// The MoE layer's kernels (<c>ILayerKernels</c>: products, routing, backward, AdamW) with float32 products, made
    /// on first use because on CUDA they open a cuBLAS handle, which dispatch-only work does not need.
    /// </summary>
    /// <exception cref="DllNotFoundException">On CUDA, cuBLAS cannot be loaded.</exception>
    public IlgpuLayerKernels Layer => LayerKernels(bfloat16Products: false);

    /// <summary>
    /// The layer's kernels with float32 products, or with bfloat16 product inputs (<see
    /// cref="IlgpuLayerKernels.BFloat16Products"/>).
    /// </summary>
    /// <exception cref="DllNotFoundException">On CUDA, cuBLAS cannot be loaded.</exception>
    public IlgpuLayerKernels LayerKernels(bool bfloat16Products)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return bfloat16Products
            ? _layerBFloat16 ??= new IlgpuLayerKernels(this, bfloat16Products: true)
            : _layer ??= new IlgpuLayerKernels(this);
    }

    /// <summary>True for a CUDA device.</summary>
    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;

    /// <summary>
    /// The CUDA stream (<c>cudaStream_t</c>) the kernels and copies are ordered on, for NCCL and cuBLAS; zero off CUDA.
    /// </summary>
    public IntPtr StreamPointer => Accelerator.DefaultStream is CudaStream cuda ? cuda.StreamPtr : IntPtr.Zero;

    /// <summary>The backend on CUDA device <paramref name="deviceIndex"/> (device name <c>cuda:N</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">No such CUDA device (none at all when CUDA or its driver is
    /// missing).</exception>
    public static IlgpuBackend CreateCuda(int deviceIndex = 0)
    {
        // Algorithms remaps MathF (exp) to ILGPU's XMath inside GPU kernels. Not OptimizationLevel.O2: on an H100 its
        // kernels failed with "operation not supported on global/shared address space" and gave wrong results.
        Context context = Context.Create(builder => builder.Cuda().EnableAlgorithms());
        try
        {
            var devices = context.GetCudaDevices();
            if (deviceIndex < 0 || deviceIndex >= devices.Count)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(deviceIndex),
                    deviceIndex,
                    $"there are {devices.Count} CUDA devices"
                );
            }
            CudaAccelerator accelerator = context.CreateCudaAccelerator(deviceIndex);
            Native.PrimaryContextAdoption? primary = null;
            try
            {
                // Before any kernel or buffer: one context for ILGPU, the CUDA runtime, NCCL and cuBLAS.
                primary = Native.PrimaryContextAdoption.Adopt(accelerator);
                return new IlgpuBackend(context, accelerator, $"cuda:{deviceIndex}", primary);
            }
            catch
            {
                primary?.Dispose();
                accelerator.Dispose();
                throw;
            }
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The backend on ILGPU's CPU accelerator (kernels run on .NET threads): tests and machines without a GPU.
    /// </summary>
    public static IlgpuBackend CreateCpu()
    {
        Context context = Context.Create(builder => builder.CPU().EnableAlgorithms());
        try
        {
            Accelerator accelerator = context.CreateCPUAccelerator(0);
            try
            {
                return new IlgpuBackend(context, accelerator, "ilgpu-cpu");
            }
            catch
            {
                accelerator.Dispose();
                throw;
            }
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Visible CUDA devices.</summary>
    /// <exception cref="InvalidOperationException">CUDA cannot be used here; the message says why.</exception>
    public static int CudaDeviceCount()
    {
        if (!CudaIsAvailable(out string reason))
            throw new InvalidOperationException(reason);
        using Context context = Context.Create(builder => builder.Cuda());
        return context.GetCudaDevices().Count;
    }

    /// <summary>
    /// True when at least one CUDA device can be used; false (never an exception) when CUDA, its driver or a GPU is
    /// missing.
    /// </summary>
    public static bool CudaIsAvailable(out string reason)
    {
        try
        {
            using Context context = Context.Create(builder => builder.Cuda());
            int count = context.GetCudaDevices().Count;
            reason =
                count > 0
                    ? $"{count} CUDA device(s)"
                    : "no CUDA device found (no GPU, or libcuda / the NVIDIA driver is missing)";
            return count > 0;
        }
        catch (Exception e)
            when (e
                    is DllNotFoundException
                        or TypeInitializationException
                        or InvalidOperationException
                        or NotSupportedException
                        or EntryPointNotFoundException
                        or ILGPU.Runtime.Cuda.CudaException
            )
        {
            reason = $"CUDA could not be probed: {e.GetType().Name}: {e.Message}";
            return false;
        }
    }

    /// <summary>Frees the kernels, the allocator's memory, the accelerator and the context.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _layer?.Dispose();
        _layerBFloat16?.Dispose();
        Kernels.Dispose();
        Allocator.Dispose();
        _primaryContext?.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }
}
