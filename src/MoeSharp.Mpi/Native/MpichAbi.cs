using System.Runtime.InteropServices;
using System.Text;

namespace MoeSharp.Mpi.Native;

/// <summary>
/// MPICH and its derivatives (Intel MPI, MVAPICH, Cray MPICH; <c>libmpi.so.12</c>, Debian's
/// <c>libmpich.so.12</c>): handles are 32-bit integers with fixed values from MPICH's <c>mpi.h</c>
/// (checked against MPICH 4.0.2's header).
/// </summary>
internal sealed unsafe class MpichAbi : IMpiAbi
{
    // Values from mpich's mpi.h: `#define MPI_COMM_WORLD ((MPI_Comm)0x44000000)` and so on.
    private const int MpiCommWorld = 0x44000000;
    private const int MpiCommNull = 0x04000000;
    private const int MpiByte = 0x4c00010d;
    private const int MpiErrorsReturn = 0x54000001;

    // MPI_Status is 20 bytes in MPICH; 32 per status leaves room.
    private const int StatusBytes = 32;

    private readonly delegate* unmanaged<int*, byte***, int, int*, int> _initThread;
    private readonly delegate* unmanaged<int*, int> _initialized;
    private readonly delegate* unmanaged<int*, int> _finalized;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly delegate* unmanaged<int, int, int> _abort;
    private readonly delegate* unmanaged<int, int*, int> _commRank;
    private readonly delegate* unmanaged<int, int*, int> _commSize;
    private readonly delegate* unmanaged<int, int, int, int*, int> _commSplit;
    private readonly delegate* unmanaged<int*, int> _commFree;
    private readonly delegate* unmanaged<int, int, int> _commSetErrhandler;
    private readonly delegate* unmanaged<int, int> _barrier;
    private readonly delegate* unmanaged<void*, int, int, void*, int, int, int, int> _alltoall;
    private readonly delegate* unmanaged<void*, int*, int*, int, void*, int*, int*, int, int, int> _alltoallv;
    private readonly delegate* unmanaged<void*, int*, int*, int, void*, int*, int*, int, int, int*, int> _ialltoallv;
    private readonly delegate* unmanaged<void*, int, int, void*, int, int, int, int> _allgather;
    private readonly delegate* unmanaged<void*, int, int, int, int, int, int*, int> _isend;
    private readonly delegate* unmanaged<void*, int, int, int, int, int, int*, int> _irecv;
    private readonly delegate* unmanaged<int, int*, int*, void*, int> _testall;
    private readonly delegate* unmanaged<int, int*, void*, int> _waitall;
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;

    /// <summary>Resolves every function from the loaded library.</summary>
    public MpichAbi(nint library, string libraryName)
    {
        LibraryName = libraryName;
        nint F(string name) => NativeLibrary.GetExport(library, name);
        _initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)F("MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)F("MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)F("MPI_Finalize");
        _abort = (delegate* unmanaged<int, int, int>)F("MPI_Abort");
        _commRank = (delegate* unmanaged<int, int*, int>)F("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<int, int*, int>)F("MPI_Comm_size");
        _commSplit = (delegate* unmanaged<int, int, int, int*, int>)F("MPI_Comm_split");
        _commFree = (delegate* unmanaged<int*, int>)F("MPI_Comm_free");
        _commSetErrhandler = (delegate* unmanaged<int, int, int>)F("MPI_Comm_set_errhandler");
        _barrier = (delegate* unmanaged<int, int>)F("MPI_Barrier");
        _alltoall = (delegate* unmanaged<void*, int, int, void*, int, int, int, int>)F("MPI_Alltoall");
        _alltoallv = (delegate* unmanaged<void*, int*, int*, int, void*, int*, int*, int, int, int>)F("MPI_Alltoallv");
        _ialltoallv = (delegate* unmanaged<void*, int*, int*, int, void*, int*, int*, int, int, int*, int>)F(
            "MPI_Ialltoallv"
        );
        _allgather = (delegate* unmanaged<void*, int, int, void*, int, int, int, int>)F("MPI_Allgather");
        _isend = (delegate* unmanaged<void*, int, int, int, int, int, int*, int>)F("MPI_Isend");
        _irecv = (delegate* unmanaged<void*, int, int, int, int, int, int*, int>)F("MPI_Irecv");
        _testall = (delegate* unmanaged<int, int*, int*, void*, int>)F("MPI_Testall");
        _waitall = (delegate* unmanaged<int, int*, void*, int>)F("MPI_Waitall");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)F("MPI_Error_string");
    }

    public string LibraryName { get; }
    public string Flavor => "MPICH";
    public nint CommWorld => MpiCommWorld;
    public nint CommNull => MpiCommNull;
    public nint Byte => MpiByte;
    public nint ErrorsReturn => MpiErrorsReturn;

    // Handles travel as nint in managed code; narrowing is exact because they came from int values.
    private static int H(nint handle) => checked((int)handle);

    public int InitThread(int required, out int provided)
    {
        int p;
        int rc = _initThread(null, null, required, &p);
        provided = p;
        return rc;
    }

    public int Initialized(out bool flag)
    {
        int f;
        int rc = _initialized(&f);
        flag = f != 0;
        return rc;
    }

    public int Finalized(out bool flag)
    {
        int f;
        int rc = _finalized(&f);
        flag = f != 0;
        return rc;
    }

    public int Finalize() => _finalize();

    public int Abort(nint comm, int errorCode) => _abort(H(comm), errorCode);

    public int CommRank(nint comm, out int rank)
    {
        int r;
        int rc = _commRank(H(comm), &r);
        rank = r;
        return rc;
    }

    public int CommSize(nint comm, out int size)
    {
        int s;
        int rc = _commSize(H(comm), &s);
        size = s;
        return rc;
    }

    public int CommSplit(nint comm, int color, int key, out nint newComm)
    {
        int c;
        int rc = _commSplit(H(comm), color, key, &c);
        newComm = c;
        return rc;
    }

    public int CommFree(nint comm)
    {
        int c = H(comm);
        return _commFree(&c);
    }

    public int CommSetErrhandler(nint comm, nint errhandler) => _commSetErrhandler(H(comm), H(errhandler));

    public int Barrier(nint comm) => _barrier(H(comm));

    public int Alltoall(
        void* send,
        int sendCount,
        nint sendType,
        void* receive,
        int receiveCount,
        nint receiveType,
        nint comm
    ) => _alltoall(send, sendCount, H(sendType), receive, receiveCount, H(receiveType), H(comm));

    public int Alltoallv(
        void* send,
        int* sendCounts,
        int* sendDispls,
        nint sendType,
        void* receive,
        int* receiveCounts,
        int* receiveDispls,
        nint receiveType,
        nint comm
    ) =>
        _alltoallv(
            send,
            sendCounts,
            sendDispls,
            H(sendType),
            receive,
            receiveCounts,
            receiveDispls,
            H(receiveType),
            H(comm)
        );

    public int Ialltoallv(
        void* send,
        int* sendCounts,
        int* sendDispls,
        nint sendType,
        void* receive,
        int* receiveCounts,
        int* receiveDispls,
        nint receiveType,
        nint comm,
        out nint request
    )
    {
        int r;
        int rc = _ialltoallv(
            send,
            sendCounts,
            sendDispls,
            H(sendType),
            receive,
            receiveCounts,
            receiveDispls,
            H(receiveType),
            H(comm),
            &r
        );
        request = r;
        return rc;
    }

    public int Allgather(
        void* send,
        int sendCount,
        nint sendType,
        void* receive,
        int receiveCount,
        nint receiveType,
        nint comm
    ) => _allgather(send, sendCount, H(sendType), receive, receiveCount, H(receiveType), H(comm));

    public int Isend(void* buffer, int count, nint type, int destination, int tag, nint comm, out nint request)
    {
        int r;
        int rc = _isend(buffer, count, H(type), destination, tag, H(comm), &r);
        request = r;
        return rc;
    }

    public int Irecv(void* buffer, int count, nint type, int source, int tag, nint comm, out nint request)
    {
        int r;
        int rc = _irecv(buffer, count, H(type), source, tag, H(comm), &r);
        request = r;
        return rc;
    }

    public int Testall(Span<nint> requests, out bool completed)
    {
        // MPICH requests are ints: copy in, call, copy back (completed ones become MPI_REQUEST_NULL).
        int[] handles = new int[requests.Length];
        for (int i = 0; i < handles.Length; i++)
            handles[i] = H(requests[i]);
        byte[] statuses = new byte[StatusBytes * Math.Max(requests.Length, 1)];
        int flag;
        int rc;
        fixed (int* r = handles)
        fixed (byte* s = statuses)
        {
            rc = _testall(handles.Length, r, &flag, s);
        }
        for (int i = 0; i < handles.Length; i++)
            requests[i] = handles[i];
        completed = flag != 0;
        return rc;
    }

    public int Waitall(Span<nint> requests)
    {
        int[] handles = new int[requests.Length];
        for (int i = 0; i < handles.Length; i++)
            handles[i] = H(requests[i]);
        byte[] statuses = new byte[StatusBytes * Math.Max(requests.Length, 1)];
        int rc;
        fixed (int* r = handles)
        fixed (byte* s = statuses)
        {
            rc = _waitall(handles.Length, r, s);
        }
        for (int i = 0; i < handles.Length; i++)
            requests[i] = handles[i];
        return rc;
    }

    public string? ErrorString(int code)
    {
        byte* text = stackalloc byte[1024];
        int length;
        return _errorString(code, text, &length) == IMpiAbi.Success
            ? Encoding.UTF8.GetString(text, Math.Clamp(length, 0, 1023))
            : null;
    }
}
