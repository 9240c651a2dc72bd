using System.Runtime.InteropServices;
using MoeSharp.Cuda.Cublas;

namespace MoeSharp.Cuda.Native;

/// <summary>
/// cuBLAS (<c>libcublas.so.13</c>, else <c>.12</c>) bound by function pointers; every call is checked and a failure
/// throws a
/// <see cref="CublasException"/> naming the function, the status and <c>cublasGetStatusString</c>.
/// </summary>
/// <remarks>
/// One instance per process (<see cref="Shared"/>), loaded on first use; it holds only immutable function pointers.
/// Signatures follow <c>cublas_api.h</c>: the handle and stream are pointers, enums are <c>int</c>, scalars
/// (<c>alpha</c>, <c>beta</c>) are host pointers (the default <c>CUBLAS_POINTER_MODE_HOST</c>).
/// <c>cublasGemmGroupedBatchedEx</c> exists from cuBLAS 12.5; <see cref="HasGroupedBatchedEx"/> tells whether this
/// library exports it.
/// </remarks>
internal sealed unsafe class CublasLibrary
{
    /// <summary>Sonames tried, newest first.</summary>
    public static IReadOnlyList<string> Sonames { get; } = ["libcublas.so.13", "libcublas.so.12"];

    /// <summary>What installs the library, for the missing-library message.</summary>
    public const string Provider =
        "cuBLAS (CUDA 13 toolkit, /usr/local/cuda/lib64, or the nvidia-cublas wheel's lib folder)";

    private static readonly Lazy<CublasLibrary> Instance = new(
        () => new CublasLibrary(),
        LazyThreadSafetyMode.ExecutionAndPublication
    );

    private readonly delegate* unmanaged<nint*, int> _create; // cublasCreate_v2(cublasHandle_t* handle)
    private readonly delegate* unmanaged<nint, int> _destroy; // cublasDestroy_v2(cublasHandle_t handle)

    // cublasSetStream_v2(cublasHandle_t, cudaStream_t)
    private readonly delegate* unmanaged<nint, nint, int> _setStream;

    // cublasSetMathMode(cublasHandle_t, cublasMath_t)
    private readonly delegate* unmanaged<nint, int, int> _setMathMode;
    private readonly delegate* unmanaged<int, byte*> _statusString; // const char* cublasGetStatusString(cublasStatus_t)

    // cublasGemmEx(handle, transa, transb, m, n, k, const void* alpha, const void* A, cudaDataType Atype, int lda,
    //              const void* B, cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
    //              cublasComputeType_t computeType, cublasGemmAlgo_t algo)
    private readonly delegate* unmanaged<
        nint,
        int,
        int,
        int,
        int,
        int,
        void*,
        nint,
        int,
        int,
        nint,
        int,
        int,
        void*,
        nint,
        int,
        int,
        int,
        int,
        int> _gemmEx;

    // cublasGemmStridedBatchedEx(handle, transa, transb, m, n, k, const void* alpha, const void* A, cudaDataType Atype,
    // int lda,
    //     long long strideA, const void* B, cudaDataType Btype, int ldb, long long strideB, const void* beta, void* C,
    //     cudaDataType Ctype, int ldc, long long strideC, int batchCount, cublasComputeType_t computeType,
    //     cublasGemmAlgo_t algo)
    private readonly delegate* unmanaged<
        nint,
        int,
        int,
        int,
        int,
        int,
        void*,
        nint,
        int,
        int,
        long,
        nint,
        int,
        int,
        long,
        void*,
        nint,
        int,
        int,
        long,
        int,
        int,
        int,
        int> _gemmStridedBatchedEx;

    // cublasGemmGroupedBatchedEx(handle, const cublasOperation_t transa_array[], const cublasOperation_t
    // transb_array[],
    //     const int m_array[], const int n_array[], const int k_array[], const void* alpha_array,
    //     const void* const Aarray[] (device), cudaDataType_t Atype, const int lda_array[],
    //     const void* const Barray[] (device), cudaDataType_t Btype, const int ldb_array[], const void* beta_array,
    //     void* const Carray[] (device), cudaDataType_t Ctype, const int ldc_array[], int group_count,
    //     const int group_size[], cublasComputeType_t computeType)
    private readonly delegate* unmanaged<
        nint,
        int*,
        int*,
        int*,
        int*,
        int*,
        void*,
        nint,
        int,
        int*,
        nint,
        int,
        int*,
        void*,
        nint,
        int,
        int*,
        int,
        int*,
        int,
        int> _gemmGroupedBatchedEx;

    private CublasLibrary()
    {
        nint lib = NativeLibraryLoader.Load(Sonames, Provider, out string name);
        LibraryName = name;
        nint F(string function) => NativeLibraryLoader.Export(lib, name, function);
        _create = (delegate* unmanaged<nint*, int>)F("cublasCreate_v2");
        _destroy = (delegate* unmanaged<nint, int>)F("cublasDestroy_v2");
        _setStream = (delegate* unmanaged<nint, nint, int>)F("cublasSetStream_v2");
        _setMathMode = (delegate* unmanaged<nint, int, int>)F("cublasSetMathMode");
        _statusString = (delegate* unmanaged<int, byte*>)F("cublasGetStatusString");
        _gemmEx = (delegate* unmanaged<
            nint,
            int,
            int,
            int,
            int,
            int,
            void*,
            nint,
            int,
            int,
            nint,
            int,
            int,
            void*,
            nint,
            int,
            int,
            int,
            int,
            int>)F("cublasGemmEx");
        _gemmStridedBatchedEx = (delegate* unmanaged<
            nint,
            int,
            int,
            int,
            int,
            int,
            void*,
            nint,
            int,
            int,
            long,
            nint,
            int,
            int,
            long,
            void*,
            nint,
            int,
            int,
            long,
            int,
            int,
            int,
            int>)F("cublasGemmStridedBatchedEx");
        _gemmGroupedBatchedEx = (delegate* unmanaged<
            nint,
            int*,
            int*,
            int*,
            int*,
            int*,
            void*,
            nint,
            int,
            int*,
            nint,
            int,
            int*,
            void*,
            nint,
            int,
            int*,
            int,
            int*,
            int,
            int>)
            NativeLibraryLoader.OptionalExport(lib, "cublasGemmGroupedBatchedEx");
    }

    /// <summary>The process's cuBLAS; throws <see cref="DllNotFoundException"/> when it is not installed.</summary>
    public static CublasLibrary Shared => Instance.Value;

    /// <summary>The soname that loaded.</summary>
    public string LibraryName { get; }

    /// <summary>True when the library exports <c>cublasGemmGroupedBatchedEx</c> (cuBLAS 12.5 and later).</summary>
    public bool HasGroupedBatchedEx => _gemmGroupedBatchedEx != null;

    /// <summary>Creates a handle bound to the current device.</summary>
    public nint Create()
    {
        nint handle;
        Check(_create(&handle), "cublasCreate_v2");
        return handle;
    }

    /// <summary>
    /// Creates a handle bound to the current device whose calls run on <paramref name="stream"/> (destroyed again if
    /// that fails).
    /// </summary>
    public nint CreateOnStream(nint stream)
    {
        nint handle = Create();
        try
        {
            SetStream(handle, stream);
        }
        catch
        {
            Destroy(handle);
            throw;
        }
        return handle;
    }

    /// <summary>Destroys a handle; returns the status (Dispose paths must not throw).</summary>
    public int Destroy(nint handle) => _destroy(handle);

    /// <summary>Makes the handle's calls run on <paramref name="stream"/>.</summary>
    public void SetStream(nint handle, nint stream) => Check(_setStream(handle, stream), "cublasSetStream_v2");

    /// <summary>Sets the math mode (e.g. <see cref="CublasConstants.PedanticMath"/>).</summary>
    public void SetMathMode(nint handle, int mode) => Check(_setMathMode(handle, mode), "cublasSetMathMode");

    /// <summary>
    /// <c>cublasGemmEx</c> with host scalars <paramref name="alpha"/> / <paramref name="beta"/> (float for 32F
    /// compute).
    /// </summary>
    public void GemmEx(
        nint handle,
        in ColumnMajorGemm g,
        float alpha,
        nint a,
        int aType,
        nint b,
        int bType,
        float beta,
        nint c,
        int cType,
        int computeType
    ) =>
        Check(
            _gemmEx(
                handle,
                g.TransA,
                g.TransB,
                g.M,
                g.N,
                g.K,
                &alpha,
                a,
                aType,
                g.Lda,
                b,
                bType,
                g.Ldb,
                &beta,
                c,
                cType,
                g.Ldc,
                computeType,
                CublasConstants.GemmDefault
            ),
            "cublasGemmEx"
        );

    /// <summary>
    /// <c>cublasGemmStridedBatchedEx</c>: <paramref name="batch"/> products of <paramref name="g"/>'s shape, operand i
    /// at
    /// <c>pointer + i·stride</c> (strides in elements), host scalars.
    /// </summary>
    public void GemmStridedBatchedEx(
        nint handle,
        in ColumnMajorGemm g,
        float alpha,
        nint a,
        int aType,
        long strideA,
        nint b,
        int bType,
        long strideB,
        float beta,
        nint c,
        int cType,
        long strideC,
        int batch,
        int computeType
    ) =>
        Check(
            _gemmStridedBatchedEx(
                handle,
                g.TransA,
                g.TransB,
                g.M,
                g.N,
                g.K,
                &alpha,
                a,
                aType,
                g.Lda,
                strideA,
                b,
                bType,
                g.Ldb,
                strideB,
                &beta,
                c,
                cType,
                g.Ldc,
                strideC,
                batch,
                computeType,
                CublasConstants.GemmDefault
            ),
            "cublasGemmStridedBatchedEx"
        );

    /// <summary>
    /// <c>cublasGemmGroupedBatchedEx</c>: arrays of length <c>groupCount</c> on the host; <paramref name="aArray"/>,
    /// <paramref name="bArray"/>, <paramref name="cArray"/> are device arrays of device pointers (one per problem).
    /// </summary>
    public void GemmGroupedBatchedEx(
        nint handle,
        int* transA,
        int* transB,
        int* m,
        int* n,
        int* k,
        float* alpha,
        nint aArray,
        int aType,
        int* lda,
        nint bArray,
        int bType,
        int* ldb,
        float* beta,
        nint cArray,
        int cType,
        int* ldc,
        int groupCount,
        int* groupSize,
        int computeType
    )
    {
        if (_gemmGroupedBatchedEx == null)
            throw new NotSupportedException(
                $"{LibraryName} has no cublasGemmGroupedBatchedEx (it needs cuBLAS 12.5 or later)."
            );
        Check(
            _gemmGroupedBatchedEx(
                handle,
                transA,
                transB,
                m,
                n,
                k,
                alpha,
                aArray,
                aType,
                lda,
                bArray,
                bType,
                ldb,
                beta,
                cArray,
                cType,
                ldc,
                groupCount,
                groupSize,
                computeType
            ),
            "cublasGemmGroupedBatchedEx"
        );
    }

    /// <summary>Throws a <see cref="CublasException"/> for any status but <c>CUBLAS_STATUS_SUCCESS</c>.</summary>
    public void Check(int status, string function)
    {
        if (status == CublasConstants.StatusSuccess)
            return;
        byte* text = _statusString(status);
        throw new CublasException(function, status, text == null ? null : Marshal.PtrToStringUTF8((nint)text));
    }
}
