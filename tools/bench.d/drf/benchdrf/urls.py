from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class Check(APIView):
    """The auth_request target: 200 with the user for a good token, DRF's
    own 401 otherwise (TokenAuthentication + IsAuthenticated)."""

    def get(self, request):
        return Response({"user": request.user.username, "id": request.user.pk})


urlpatterns = [path("auth/", Check.as_view())]
