using System.Runtime.InteropServices;

namespace MoeSharp.Cuda.Native;

/// <summary>
/// NCCL (<c>libnccl.so.2</c>) bound by function pointers; every call is checked and a failure throws an
/// <see cref="NcclException"/> naming the function, the code and <c>ncclGetErrorString</c>.
/// </summary>
/// <remarks>
/// One instance per process (<see cref="Shared"/>), loaded on first use; it holds only immutable function pointers.
/// Signatures follow <c>nccl.h</c> 2.28: <c>ncclComm_t</c> and <c>cudaStream_t</c> are pointers (<c>nint</c>), counts
/// are <c>size_t</c> (<c>nuint</c>), enums are <c>int</c>, and <c>ncclUniqueId</c> (128 bytes) is passed by value.
/// </remarks>
internal sealed unsafe class NcclLibrary
{
    /// <summary>Sonames tried.</summary>
    public static IReadOnlyList<string> Sonames { get; } = ["libnccl.so.2"];

    /// <summary>What installs the library, for the missing-library message.</summary>
    public const string Provider =
        "NCCL (apt libnccl2, or the nvidia-nccl-cu13 wheel: add its site-packages/nvidia/nccl/lib)";

    private static readonly Lazy<NcclLibrary> Instance = new(
        () => new NcclLibrary(),
        LazyThreadSafetyMode.ExecutionAndPublication
    );

    private readonly delegate* unmanaged<int*, int> _getVersion; // (int* version)
    private readonly delegate* unmanaged<NcclUniqueId*, int> _getUniqueId; // (ncclUniqueId* uniqueId)

    // (ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank)
    private readonly delegate* unmanaged<nint*, int, NcclUniqueId, int, int> _commInitRank;

    // (ncclComm_t* comm, int ndev, const int* devlist)
    private readonly delegate* unmanaged<nint*, int, int*, int> _commInitAll;
    private readonly delegate* unmanaged<nint, int> _commDestroy; // (ncclComm_t comm)
    private readonly delegate* unmanaged<nint, int> _commAbort; // (ncclComm_t comm)

    // (ncclComm_t comm, ncclResult_t* asyncError)
    private readonly delegate* unmanaged<nint, int*, int> _commGetAsyncError;
    private readonly delegate* unmanaged<int, byte*> _getErrorString; // const char* (ncclResult_t)
    private readonly delegate* unmanaged<int> _groupStart;
    private readonly delegate* unmanaged<int> _groupEnd;

    // (const void* sendbuff, size_t count, ncclDataType_t, int peer, ncclComm_t, cudaStream_t)
    private readonly delegate* unmanaged<nint, nuint, int, int, nint, nint, int> _send;

    // (void* recvbuff, size_t count, ncclDataType_t, int peer, ncclComm_t, cudaStream_t)
    private readonly delegate* unmanaged<nint, nuint, int, int, nint, nint, int> _recv;

    // (sendbuff, recvbuff, size_t count, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t)
    private readonly delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> _allReduce;

    // (sendbuff, recvbuff, size_t sendcount, ncclDataType_t, ncclComm_t, cudaStream_t)
    private readonly delegate* unmanaged<nint, nint, nuint, int, nint, nint, int> _allGather;

    private NcclLibrary()
    {
        nint lib = NativeLibraryLoader.Load(Sonames, Provider, out string name);
        LibraryName = name;
        nint F(string function) => NativeLibraryLoader.Export(lib, name, function);
        _getVersion = (delegate* unmanaged<int*, int>)F("ncclGetVersion");
        _getUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)F("ncclGetUniqueId");
        _commInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)F("ncclCommInitRank");
        _commInitAll = (delegate* unmanaged<nint*, int, int*, int>)F("ncclCommInitAll");
        _commDestroy = (delegate* unmanaged<nint, int>)F("ncclCommDestroy");
        _commAbort = (delegate* unmanaged<nint, int>)F("ncclCommAbort");
        _commGetAsyncError = (delegate* unmanaged<nint, int*, int>)F("ncclCommGetAsyncError");
        _getErrorString = (delegate* unmanaged<int, byte*>)F("ncclGetErrorString");
        _groupStart = (delegate* unmanaged<int>)F("ncclGroupStart");
        _groupEnd = (delegate* unmanaged<int>)F("ncclGroupEnd");
        _send = (delegate* unmanaged<nint, nuint, int, int, nint, nint, int>)F("ncclSend");
        _recv = (delegate* unmanaged<nint, nuint, int, int, nint, nint, int>)F("ncclRecv");
        _allReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)F("ncclAllReduce");
        _allGather = (delegate* unmanaged<nint, nint, nuint, int, nint, nint, int>)F("ncclAllGather");
    }

    /// <summary>The process's NCCL; throws <see cref="DllNotFoundException"/> when it is not installed.</summary>
    public static NcclLibrary Shared => Instance.Value;

    /// <summary>The soname that loaded.</summary>
    public string LibraryName { get; }

    /// <summary><c>NCCL_VERSION_CODE</c> of the loaded library (e.g. 22803 for 2.28.3).</summary>
    public int Version(int rank)
    {
        int version;
        Check(_getVersion(&version), "ncclGetVersion", rank);
        return version;
    }

    /// <summary>
    /// Creates a unique id (rank 0 only), to be shared with every rank before <see cref="CommInitRank"/>.
    /// </summary>
    public NcclUniqueId GetUniqueId(int rank)
    {
        NcclUniqueId id;
        Check(_getUniqueId(&id), "ncclGetUniqueId", rank);
        return id;
    }

    /// <summary>
    /// Joins a communicator of <paramref name="size"/> ranks on the current device; blocks until all have joined.
    /// </summary>
    public nint CommInitRank(int size, NcclUniqueId id, int rank)
    {
        nint comm;
        Check(_commInitRank(&comm, size, id, rank), "ncclCommInitRank", rank);
        return comm;
    }

    /// <summary>
    /// One communicator per device in <paramref name="devices"/>, created by one thread (single-process clique).
    /// </summary>
    public nint[] CommInitAll(ReadOnlySpan<int> devices)
    {
        var comms = new nint[devices.Length];
        fixed (nint* c = comms)
        fixed (int* d = devices)
            Check(_commInitAll(c, devices.Length, d), "ncclCommInitAll", -1);
        return comms;
    }

    /// <summary>
    /// Frees a communicator after its work completed; returns the code (Dispose paths must not throw).
    /// </summary>
    public int CommDestroy(nint comm) => _commDestroy(comm);

    /// <summary>Aborts the communicator's pending operations and frees it; returns the code.</summary>
    public int CommAbort(nint comm) => _commAbort(comm);

    /// <summary>
    /// The communicator's asynchronous error (<c>ncclSuccess</c> when none, <c>ncclInProgress</c> while initializing).
    /// </summary>
    public int CommGetAsyncError(nint comm, int rank)
    {
        int asyncError;
        Check(_commGetAsyncError(comm, &asyncError), "ncclCommGetAsyncError", rank);
        return asyncError;
    }

    /// <summary>Starts fusing the following NCCL calls of this thread.</summary>
    public void GroupStart(int rank) => Check(_groupStart(), "ncclGroupStart", rank);

    /// <summary>Launches the fused calls since <see cref="GroupStart"/> on their streams.</summary>
    public void GroupEnd(int rank) => Check(_groupEnd(), "ncclGroupEnd", rank);

    /// <summary>
    /// Sends <paramref name="count"/> elements to <paramref name="peer"/> on <paramref name="stream"/>.
    /// </summary>
    public void Send(nint buffer, long count, int dataType, int peer, nint comm, nint stream, int rank) =>
        Check(_send(buffer, (nuint)count, dataType, peer, comm, stream), "ncclSend", rank);

    /// <summary>
    /// Receives <paramref name="count"/> elements from <paramref name="peer"/> on <paramref name="stream"/>.
    /// </summary>
    public void Recv(nint buffer, long count, int dataType, int peer, nint comm, nint stream, int rank) =>
        Check(_recv(buffer, (nuint)count, dataType, peer, comm, stream), "ncclRecv", rank);

    /// <summary>
    /// All-reduce (NCCL's order of summation, not rank order: MoeSharp's ordered sum uses <see cref="AllGather"/>).
    /// </summary>
    public void AllReduce(
        nint send,
        nint receive,
        long count,
        int dataType,
        int op,
        nint comm,
        nint stream,
        int rank
    ) => Check(_allReduce(send, receive, (nuint)count, dataType, op, comm, stream), "ncclAllReduce", rank);

    /// <summary>
    /// All-gather: rank i's <paramref name="sendCount"/> elements land at <c>receive + i·sendCount</c>.
    /// </summary>
    public void AllGather(nint send, nint receive, long sendCount, int dataType, nint comm, nint stream, int rank) =>
        Check(_allGather(send, receive, (nuint)sendCount, dataType, comm, stream), "ncclAllGather", rank);

    /// <summary>The library's text for <paramref name="code"/>.</summary>
    public string? ErrorString(int code)
    {
        byte* text = _getErrorString(code);
        return text == null ? null : Marshal.PtrToStringUTF8((nint)text);
    }

    /// <summary>Throws an <see cref="NcclException"/> for any code but <c>ncclSuccess</c>.</summary>
    public void Check(int code, string function, int rank)
    {
        if (code != NcclConstants.Success)
            throw new NcclException(function, code, ErrorString(code), rank);
    }
}
