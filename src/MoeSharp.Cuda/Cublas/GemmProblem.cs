namespace MoeSharp.Cuda.Cublas;

/// <summary>
/// One column-major product of a grouped call: <see cref="Gemm"/>'s shape and leading dimensions with cuBLAS's operands
/// A (<see cref="First"/>), B (<see cref="Second"/>) and C, all device pointers. For a row-major product the first
/// operand is the caller's B (see <see cref="ColumnMajorGemm"/>).
/// </summary>
internal readonly record struct GemmProblem(ColumnMajorGemm Gemm, nint First, nint Second, nint C);
