using System.Runtime.InteropServices;

namespace MoeSharp.Cuda.Native;

/// <summary>
/// The CUDA runtime (<c>libcudart.so.13</c>, else <c>.12</c>) bound by function pointers; every call is checked and a
/// failure throws a <see cref="CudaException"/> naming the function, the code, its name and the runtime's message.
/// </summary>
/// <remarks>
/// One instance per process (<see cref="Shared"/>), loaded on first use: a shared library is loaded once per process
/// anyway, and the instance only holds immutable function pointers, so this is not mutable static state. Signatures
/// are those of <c>cuda_runtime_api.h</c>; enums are C <c>int</c>, <c>size_t</c> is <c>nuint</c>, handles
/// (<c>cudaStream_t</c>, <c>cudaEvent_t</c>) and device pointers are <c>nint</c>.
/// </remarks>
internal sealed unsafe class CudaRuntime
{
    /// <summary>Sonames tried, newest first.</summary>
    public static IReadOnlyList<string> Sonames { get; } = ["libcudart.so.13", "libcudart.so.12"];

    /// <summary>What installs the library, for the missing-library message.</summary>
    public const string Provider =
        "the CUDA runtime (CUDA 13 toolkit, /usr/local/cuda/lib64, or the nvidia-cuda-runtime wheel's lib folder)";

    private static readonly Lazy<CudaRuntime> Instance = new(
        () => new CudaRuntime(),
        LazyThreadSafetyMode.ExecutionAndPublication
    );

    // cudaError_t f(...) unless noted.
    private readonly delegate* unmanaged<int*, int> _getDeviceCount; // (int* count)
    private readonly delegate* unmanaged<int, int> _setDevice; // (int device)
    private readonly delegate* unmanaged<int*, int> _getDevice; // (int* device)
    private readonly delegate* unmanaged<nint*, nuint, int> _malloc; // (void** devPtr, size_t size)
    private readonly delegate* unmanaged<nint, int> _free; // (void* devPtr)

    // (void** ptr, size_t size): page-locked host memory
    private readonly delegate* unmanaged<nint*, nuint, int> _mallocHost;
    private readonly delegate* unmanaged<nint, int> _freeHost; // (void* ptr)

    // (void* dst, const void* src, size_t count, cudaMemcpyKind kind)
    private readonly delegate* unmanaged<nint, nint, nuint, int, int> _memcpy;
    private readonly delegate* unmanaged<nint, nint, nuint, int, nint, int> _memcpyAsync; // (..., cudaStream_t stream)

    // (cudaStream_t* pStream, unsigned int flags)
    private readonly delegate* unmanaged<nint*, uint, int> _streamCreateWithFlags;
    private readonly delegate* unmanaged<nint, int> _streamDestroy;
    private readonly delegate* unmanaged<nint, int> _streamSynchronize;
    private readonly delegate* unmanaged<nint, int> _streamQuery;

    // (cudaStream_t, cudaEvent_t, unsigned int flags)
    private readonly delegate* unmanaged<nint, nint, uint, int> _streamWaitEvent;

    // (cudaEvent_t* event, unsigned int flags)
    private readonly delegate* unmanaged<nint*, uint, int> _eventCreateWithFlags;
    private readonly delegate* unmanaged<nint, nint, int> _eventRecord; // (cudaEvent_t, cudaStream_t)
    private readonly delegate* unmanaged<nint, int> _eventSynchronize;
    private readonly delegate* unmanaged<nint, int> _eventQuery;

    // (float* ms, cudaEvent_t start, cudaEvent_t end)
    private readonly delegate* unmanaged<float*, nint, nint, int> _eventElapsedTime;
    private readonly delegate* unmanaged<nint, int> _eventDestroy;
    private readonly delegate* unmanaged<nuint*, nuint*, int> _memGetInfo; // (size_t* free, size_t* total)
    private readonly delegate* unmanaged<int, byte*> _getErrorString; // const char* (cudaError_t)
    private readonly delegate* unmanaged<int, byte*> _getErrorName; // const char* (cudaError_t)

    // CUDA graphs (stream capture): (cudaStream_t, cudaStreamCaptureMode), (cudaStream_t, cudaGraph_t*),
    // (cudaGraphExec_t*, cudaGraph_t, unsigned long long flags), (cudaGraphExec_t, cudaStream_t), destroys.
    private readonly delegate* unmanaged<nint, int, int> _streamBeginCapture;
    private readonly delegate* unmanaged<nint, nint*, int> _streamEndCapture;
    private readonly delegate* unmanaged<nint*, nint, ulong, int> _graphInstantiateWithFlags;
    private readonly delegate* unmanaged<nint, nint, int> _graphLaunch;
    private readonly delegate* unmanaged<nint, int> _graphExecDestroy;
    private readonly delegate* unmanaged<nint, int> _graphDestroy;

    private CudaRuntime()
    {
        nint lib = NativeLibraryLoader.Load(Sonames, Provider, out string name);
        LibraryName = name;
        nint F(string function) => NativeLibraryLoader.Export(lib, name, function);
        _getDeviceCount = (delegate* unmanaged<int*, int>)F("cudaGetDeviceCount");
        _setDevice = (delegate* unmanaged<int, int>)F("cudaSetDevice");
        _getDevice = (delegate* unmanaged<int*, int>)F("cudaGetDevice");
        _malloc = (delegate* unmanaged<nint*, nuint, int>)F("cudaMalloc");
        _free = (delegate* unmanaged<nint, int>)F("cudaFree");
        _mallocHost = (delegate* unmanaged<nint*, nuint, int>)F("cudaMallocHost");
        _freeHost = (delegate* unmanaged<nint, int>)F("cudaFreeHost");
        _memcpy = (delegate* unmanaged<nint, nint, nuint, int, int>)F("cudaMemcpy");
        _memcpyAsync = (delegate* unmanaged<nint, nint, nuint, int, nint, int>)F("cudaMemcpyAsync");
        _streamCreateWithFlags = (delegate* unmanaged<nint*, uint, int>)F("cudaStreamCreateWithFlags");
        _streamDestroy = (delegate* unmanaged<nint, int>)F("cudaStreamDestroy");
        _streamSynchronize = (delegate* unmanaged<nint, int>)F("cudaStreamSynchronize");
        _streamQuery = (delegate* unmanaged<nint, int>)F("cudaStreamQuery");
        _streamWaitEvent = (delegate* unmanaged<nint, nint, uint, int>)F("cudaStreamWaitEvent");
        _eventCreateWithFlags = (delegate* unmanaged<nint*, uint, int>)F("cudaEventCreateWithFlags");
        _eventRecord = (delegate* unmanaged<nint, nint, int>)F("cudaEventRecord");
        _eventSynchronize = (delegate* unmanaged<nint, int>)F("cudaEventSynchronize");
        _eventQuery = (delegate* unmanaged<nint, int>)F("cudaEventQuery");
        _eventElapsedTime = (delegate* unmanaged<float*, nint, nint, int>)F("cudaEventElapsedTime");
        _eventDestroy = (delegate* unmanaged<nint, int>)F("cudaEventDestroy");
        _memGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)F("cudaMemGetInfo");
        _getErrorString = (delegate* unmanaged<int, byte*>)F("cudaGetErrorString");
        _getErrorName = (delegate* unmanaged<int, byte*>)F("cudaGetErrorName");
        _streamBeginCapture = (delegate* unmanaged<nint, int, int>)F("cudaStreamBeginCapture");
        _streamEndCapture = (delegate* unmanaged<nint, nint*, int>)F("cudaStreamEndCapture");
        _graphInstantiateWithFlags = (delegate* unmanaged<nint*, nint, ulong, int>)F("cudaGraphInstantiateWithFlags");
        _graphLaunch = (delegate* unmanaged<nint, nint, int>)F("cudaGraphLaunch");
        _graphExecDestroy = (delegate* unmanaged<nint, int>)F("cudaGraphExecDestroy");
        _graphDestroy = (delegate* unmanaged<nint, int>)F("cudaGraphDestroy");
    }

    /// <summary>
    /// The process's CUDA runtime; throws <see cref="DllNotFoundException"/> when it is not installed.
    /// </summary>
    public static CudaRuntime Shared => Instance.Value;

    /// <summary>The soname that loaded.</summary>
    public string LibraryName { get; }

    /// <summary>Number of devices; 0 (not an exception) when the driver finds none.</summary>
    public int DeviceCount()
    {
        int count;
        int rc = _getDeviceCount(&count);
        if (rc == CudaConstants.ErrorNoDevice)
            return 0;
        Check(rc, "cudaGetDeviceCount");
        return count;
    }

    /// <summary>
    /// Makes <paramref name="device"/> current on the calling thread (the runtime's device is per thread).
    /// </summary>
    public void SetDevice(int device) => Check(_setDevice(device), "cudaSetDevice");

    /// <summary>The calling thread's current device.</summary>
    public int GetDevice()
    {
        int device;
        Check(_getDevice(&device), "cudaGetDevice");
        return device;
    }

    /// <summary>Free and total bytes of the current device (creates its primary context if there is none).</summary>
    public (long Free, long Total) MemGetInfo()
    {
        nuint free,
            total;
        Check(_memGetInfo(&free, &total), "cudaMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <summary>Allocates <paramref name="bytes"/> on the current device.</summary>
    public nint Malloc(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        nint pointer;
        Check(_malloc(&pointer, (nuint)bytes), "cudaMalloc");
        return pointer;
    }

    /// <summary>Frees a <see cref="Malloc"/> allocation.</summary>
    public void Free(nint pointer) => Check(_free(pointer), "cudaFree");

    /// <summary>Frees without throwing, for Dispose paths; returns the error code.</summary>
    public int FreeNoThrow(nint pointer) => _free(pointer);

    /// <summary>Starts capturing the work queued on <paramref name="stream"/> into a graph (none of it runs
    /// meanwhile).</summary>
    /// <param name="stream">A stream other than the legacy default stream.</param>
    /// <param name="mode">cudaStreamCaptureMode: 0 global, 1 thread-local, 2 relaxed.</param>
    public void StreamBeginCapture(nint stream, int mode) =>
        Check(_streamBeginCapture(stream, mode), "cudaStreamBeginCapture");

    /// <summary>Ends the capture on <paramref name="stream"/> and returns the captured graph.</summary>
    public nint StreamEndCapture(nint stream)
    {
        nint graph;
        Check(_streamEndCapture(stream, &graph), "cudaStreamEndCapture");
        return graph;
    }

    /// <summary>An executable graph of <paramref name="graph"/>.</summary>
    public nint GraphInstantiate(nint graph)
    {
        nint exec;
        Check(_graphInstantiateWithFlags(&exec, graph, 0), "cudaGraphInstantiateWithFlags");
        return exec;
    }

    /// <summary>Queues one run of an executable graph on <paramref name="stream"/>.</summary>
    public void GraphLaunch(nint exec, nint stream) => Check(_graphLaunch(exec, stream), "cudaGraphLaunch");

    /// <summary>Destroys an executable graph without throwing; returns the error code.</summary>
    public int GraphExecDestroy(nint exec) => _graphExecDestroy(exec);

    /// <summary>Destroys a graph without throwing; returns the error code.</summary>
    public int GraphDestroy(nint graph) => _graphDestroy(graph);

    /// <summary>
    /// Allocates <paramref name="bytes"/> of page-locked host memory (copies from it run asynchronously).
    /// </summary>
    public nint MallocHost(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        nint pointer;
        Check(_mallocHost(&pointer, (nuint)bytes), "cudaMallocHost");
        return pointer;
    }

    /// <summary>
    /// Frees a <see cref="MallocHost"/> allocation; returns the error code (Dispose paths must not throw).
    /// </summary>
    public int FreeHost(nint pointer) => _freeHost(pointer);

    /// <summary>Synchronous copy (returns when done).</summary>
    public void Memcpy(nint destination, nint source, long bytes, int kind) =>
        Check(_memcpy(destination, source, (nuint)bytes, kind), "cudaMemcpy");

    /// <summary>Copy ordered on <paramref name="stream"/>.</summary>
    public void MemcpyAsync(nint destination, nint source, long bytes, int kind, nint stream) =>
        Check(_memcpyAsync(destination, source, (nuint)bytes, kind, stream), "cudaMemcpyAsync");

    /// <summary>
    /// Creates a stream with <paramref name="flags"/> (e.g. <see cref="CudaConstants.StreamNonBlocking"/>) on the
    /// current device.
    /// </summary>
    public nint StreamCreate(uint flags)
    {
        nint stream;
        Check(_streamCreateWithFlags(&stream, flags), "cudaStreamCreateWithFlags");
        return stream;
    }

    /// <summary>Destroys a stream; returns the error code (Dispose paths must not throw).</summary>
    public int StreamDestroy(nint stream) => _streamDestroy(stream);

    /// <summary>Blocks until all work on <paramref name="stream"/> is done.</summary>
    public void StreamSynchronize(nint stream) => Check(_streamSynchronize(stream), "cudaStreamSynchronize");

    /// <summary>True when all work on the stream is done, false while some is pending.</summary>
    public bool StreamQuery(nint stream) => Ready(_streamQuery(stream), "cudaStreamQuery");

    /// <summary>
    /// Makes later work on <paramref name="stream"/> wait until <paramref name="cudaEvent"/> completes.
    /// </summary>
    public void StreamWaitEvent(nint stream, nint cudaEvent) =>
        Check(_streamWaitEvent(stream, cudaEvent, 0), "cudaStreamWaitEvent");

    /// <summary>Creates an event with <paramref name="flags"/>.</summary>
    public nint EventCreate(uint flags)
    {
        nint e;
        Check(_eventCreateWithFlags(&e, flags), "cudaEventCreateWithFlags");
        return e;
    }

    /// <summary>Records <paramref name="cudaEvent"/> on <paramref name="stream"/>.</summary>
    public void EventRecord(nint cudaEvent, nint stream) => Check(_eventRecord(cudaEvent, stream), "cudaEventRecord");

    /// <summary>Blocks until the event has completed.</summary>
    public void EventSynchronize(nint cudaEvent) => Check(_eventSynchronize(cudaEvent), "cudaEventSynchronize");

    /// <summary>True when the event has completed, false while pending.</summary>
    public bool EventQuery(nint cudaEvent) => Ready(_eventQuery(cudaEvent), "cudaEventQuery");

    /// <summary>Milliseconds between two recorded (timing) events.</summary>
    public float EventElapsedMilliseconds(nint start, nint end)
    {
        float ms;
        Check(_eventElapsedTime(&ms, start, end), "cudaEventElapsedTime");
        return ms;
    }

    /// <summary>Destroys an event; returns the error code (Dispose paths must not throw).</summary>
    public int EventDestroy(nint cudaEvent) => _eventDestroy(cudaEvent);

    /// <summary>Throws a <see cref="CudaException"/> for any code but <c>cudaSuccess</c>.</summary>
    public void Check(int code, string function)
    {
        if (code != CudaConstants.Success)
            throw new CudaException(function, code, Utf8(_getErrorName(code)), Utf8(_getErrorString(code)));
    }

    private bool Ready(int code, string function)
    {
        if (code == CudaConstants.ErrorNotReady)
            return false;
        Check(code, function);
        return true;
    }

    private static string? Utf8(byte* text) => text == null ? null : Marshal.PtrToStringUTF8((nint)text);
}
