using System.Runtime.InteropServices;
using System.Text;

namespace MoeSharp.Mpi.Native;

/// <summary>
/// Open MPI (<c>libmpi.so.40</c>): handles are the addresses of exported predefined objects
/// (<c>MPI_COMM_WORLD</c> is <c>&amp;ompi_mpi_comm_world</c>), so they are resolved with
/// <see cref="NativeLibrary.GetExport"/>; communicators and requests are pointers.
/// </summary>
internal sealed unsafe class OpenMpiAbi : IMpiAbi
{
    // MPI_Status is 24 bytes in Open MPI; the scratch buffers below hold 32 per status so no write overruns.
    private const int StatusBytes = 32;

    private readonly delegate* unmanaged<int*, byte***, int, int*, int> _initThread;
    private readonly delegate* unmanaged<int*, int> _initialized;
    private readonly delegate* unmanaged<int*, int> _finalized;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly delegate* unmanaged<nint, int, int> _abort;
    private readonly delegate* unmanaged<nint, int*, int> _commRank;
    private readonly delegate* unmanaged<nint, int*, int> _commSize;
    private readonly delegate* unmanaged<nint, int, int, nint*, int> _commSplit;
    private readonly delegate* unmanaged<nint*, int> _commFree;
    private readonly delegate* unmanaged<nint, nint, int> _commSetErrhandler;
    private readonly delegate* unmanaged<nint, int> _barrier;
    private readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> _alltoall;
    private readonly delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, int> _alltoallv;
    private readonly delegate* unmanaged<
        void*,
        int*,
        int*,
        nint,
        void*,
        int*,
        int*,
        nint,
        nint,
        nint*,
        int> _ialltoallv;
    private readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> _allgather;
    private readonly delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int> _isend;
    private readonly delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int> _irecv;
    private readonly delegate* unmanaged<int, nint*, int*, void*, int> _testall;
    private readonly delegate* unmanaged<int, nint*, void*, int> _waitall;
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;

    /// <summary>Resolves every function and predefined handle from the loaded library.</summary>
    public OpenMpiAbi(nint library, string libraryName)
    {
        LibraryName = libraryName;
        nint F(string name) => NativeLibrary.GetExport(library, name);
        _initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)F("MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)F("MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)F("MPI_Finalize");
        _abort = (delegate* unmanaged<nint, int, int>)F("MPI_Abort");
        _commRank = (delegate* unmanaged<nint, int*, int>)F("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<nint, int*, int>)F("MPI_Comm_size");
        _commSplit = (delegate* unmanaged<nint, int, int, nint*, int>)F("MPI_Comm_split");
        _commFree = (delegate* unmanaged<nint*, int>)F("MPI_Comm_free");
        _commSetErrhandler = (delegate* unmanaged<nint, nint, int>)F("MPI_Comm_set_errhandler");
        _barrier = (delegate* unmanaged<nint, int>)F("MPI_Barrier");
        _alltoall = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)F("MPI_Alltoall");
        _alltoallv = (delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, int>)F(
            "MPI_Alltoallv"
        );
        _ialltoallv = (delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, nint*, int>)F(
            "MPI_Ialltoallv"
        );
        _allgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)F("MPI_Allgather");
        _isend = (delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int>)F("MPI_Isend");
        _irecv = (delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int>)F("MPI_Irecv");
        _testall = (delegate* unmanaged<int, nint*, int*, void*, int>)F("MPI_Testall");
        _waitall = (delegate* unmanaged<int, nint*, void*, int>)F("MPI_Waitall");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)F("MPI_Error_string");

        CommWorld = F("ompi_mpi_comm_world");
        CommNull = F("ompi_mpi_comm_null");
        Byte = F("ompi_mpi_byte");
        ErrorsReturn = F("ompi_mpi_errors_return");
    }

    public string LibraryName { get; }
    public string Flavor => "Open MPI";
    public nint CommWorld { get; }
    public nint CommNull { get; }
    public nint Byte { get; }
    public nint ErrorsReturn { get; }

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

    public int Abort(nint comm, int errorCode) => _abort(comm, errorCode);

    public int CommRank(nint comm, out int rank)
    {
        int r;
        int rc = _commRank(comm, &r);
        rank = r;
        return rc;
    }

    public int CommSize(nint comm, out int size)
    {
        int s;
        int rc = _commSize(comm, &s);
        size = s;
        return rc;
    }

    public int CommSplit(nint comm, int color, int key, out nint newComm)
    {
        nint c;
        int rc = _commSplit(comm, color, key, &c);
        newComm = c;
        return rc;
    }

    public int CommFree(nint comm) => _commFree(&comm);

    public int CommSetErrhandler(nint comm, nint errhandler) => _commSetErrhandler(comm, errhandler);

    public int Barrier(nint comm) => _barrier(comm);

    public int Alltoall(
        void* send,
        int sendCount,
        nint sendType,
        void* receive,
        int receiveCount,
        nint receiveType,
        nint comm
    ) => _alltoall(send, sendCount, sendType, receive, receiveCount, receiveType, comm);

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
    ) => _alltoallv(send, sendCounts, sendDispls, sendType, receive, receiveCounts, receiveDispls, receiveType, comm);

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
        nint r;
        int rc = _ialltoallv(
            send,
            sendCounts,
            sendDispls,
            sendType,
            receive,
            receiveCounts,
            receiveDispls,
            receiveType,
            comm,
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
    ) => _allgather(send, sendCount, sendType, receive, receiveCount, receiveType, comm);

    public int Isend(void* buffer, int count, nint type, int destination, int tag, nint comm, out nint request)
    {
        nint r;
        int rc = _isend(buffer, count, type, destination, tag, comm, &r);
        request = r;
        return rc;
    }

    public int Irecv(void* buffer, int count, nint type, int source, int tag, nint comm, out nint request)
    {
        nint r;
        int rc = _irecv(buffer, count, type, source, tag, comm, &r);
        request = r;
        return rc;
    }

    public int Testall(Span<nint> requests, out bool completed)
    {
        byte[] statuses = new byte[StatusBytes * Math.Max(requests.Length, 1)];
        int flag;
        int rc;
        fixed (nint* r = requests)
        fixed (byte* s = statuses)
        {
            rc = _testall(requests.Length, r, &flag, s);
        }
        completed = flag != 0;
        return rc;
    }

    public int Waitall(Span<nint> requests)
    {
        byte[] statuses = new byte[StatusBytes * Math.Max(requests.Length, 1)];
        fixed (nint* r = requests)
        fixed (byte* s = statuses)
        {
            return _waitall(requests.Length, r, s);
        }
    }

    public string? ErrorString(int code)
    {
        // MPI_MAX_ERROR_STRING is 256 in Open MPI and 512 in MPICH; 1024 covers both.
        byte* text = stackalloc byte[1024];
        int length;
        return _errorString(code, text, &length) == IMpiAbi.Success
            ? Encoding.UTF8.GetString(text, Math.Clamp(length, 0, 1023))
            : null;
    }
}
